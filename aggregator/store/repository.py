"""The store's front door: source state, one source's ingest as one transaction, topic
re-tagging, and the reads the web layer needs. SQL lives here and in the store modules it uses
(writer.py for the ingest write path, tagging.py for topics, bulk.py for bulk helpers).

A source's papers, sightings, topics and fetch state commit together or not at all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, text, update
from sqlalchemy.exc import OperationalError

from aggregator.records import (
    ClusterPlan,
    KnownPaper,
    PaperRecord,
    PaperTagger,
    PaperText,
    StoredSighting,
    TitleStub,
)
from aggregator.store import meta
from aggregator.store.bulk import chunks
from aggregator.store.codec import digest, encode_sighting
from aggregator.store.database import make_engine, upgrade
from aggregator.store.indexing import index_is_current, rebuild_index
from aggregator.store.meta import STAMP_EPOCH
from aggregator.store.pages import (
    Deadline,
    PageQuery,
    TextQuery,
    candidate_ids,
    digest_newest,
    digest_top,
    page_ids,
)
from aggregator.store.schema import paper_topics, papers, sightings, sources, store_meta
from aggregator.store.tagging import (
    RetagResult,
    changed_topics,
    forget_topics,
    remember_topics,
    retag,
    sources_of,
    topic_counts,
    topics_of,
)
from aggregator.store.writer import IngestWriter, paper_text
from aggregator.topics.index_query import IndexQuery
from aggregator.types import (
    EPOCH,
    STOPPED,
    DigestEntry,
    FetchDone,
    PaperView,
    Period,
    Sighting,
    SightingView,
    SourceOutcome,
    SourceState,
    TopicMatch,
)

__all__ = ["QUERY_BUDGET", "Page", "PageQuery", "Store", "TextQuery"]

QUERY_BUDGET = 0.8  # CPU seconds a page may take to find (and 4x that in all): then a 503
WRITE_LOCK = 0x70617065  # "pape": the advisory lock every write transaction takes on PostgreSQL


@dataclass(frozen=True, slots=True)
class Page:
    """A page of papers in feed order, whether more follow, and how many match in all."""

    papers: list[PaperView]
    more: bool
    last: tuple[datetime, int] | None  # (published, id) of the last paper: the next page's cursor
    total: int | None  # None when the query did not ask for it
    exact: bool = True  # False: total is an estimate (an upper bound, or a capped count)


class SourceBatch:
    """One source's batch inside its write transaction (Store.source_batch): the sightings that
    are new or changed, the stored papers they may touch, and the write of the merge plans."""

    def __init__(
        self, name: str, changed: list[StoredSighting], held: set[int], writer: IngestWriter, entries: int
    ) -> None:
        self.name = name
        self.changed = changed  # new sightings and stored ones whose content changed
        self._held = held  # stored papers holding changed sightings of this source
        self._writer = writer
        self._entries = entries
        self.new = self.updated = 0

    def candidates(self) -> tuple[list[KnownPaper], list[TitleStub]]:
        """The stored papers the changed sightings may touch: in full, and as TitleStubs."""
        return self._writer.load_candidates(self.changed, self._held) if self.changed else ([], [])

    def load_papers(self, ids: set[int]) -> list[KnownPaper]:
        """Stored papers in full (the stubs a sighting could join)."""
        return self._writer.load_papers(ids)

    def write(self, plans: list[ClusterPlan]) -> None:
        """Write the plans: papers made, merged and updated, their sightings, keys, topics and
        full-text index entries."""
        new, updated = self._writer.apply(plans)
        self.new += new
        self.updated += updated

    @property
    def outcome(self) -> SourceOutcome:
        unchanged = self._entries - self.new - self.updated
        return SourceOutcome(self.name, new=self.new, updated=self.updated, unchanged=unchanged)


class Store:
    """A database holding papers, their sightings and the sources' fetch state."""

    def __init__(
        self, engine: Engine, *, tag_authority: str = "localhost", tagger: PaperTagger | None = None
    ) -> None:
        self.engine = engine
        self.tag_authority = tag_authority
        self.tagger = tagger  # papers written are tagged with these topics

    @classmethod
    def open(
        cls,
        url: str,
        *,
        tag_authority: str = "localhost",
        tagger: PaperTagger | None = None,
        migrate: bool = True,
    ) -> Store:
        store = cls(make_engine(url), tag_authority=tag_authority, tagger=tagger)
        if migrate:
            store.upgrade()
        return store

    def upgrade(self) -> None:
        """Migrations, then the search index rebuilt if it was made by another way of cutting
        text into atoms (indexing.INDEX_VERSIONS)."""
        upgrade(self.engine)
        with self.engine.connect() as conn:
            current = index_is_current(conn)
        if not current:
            with self._write() as conn:
                if not index_is_current(conn):  # another process may have done it meanwhile
                    rebuild_index(conn)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction. On PostgreSQL, writers (workers, web, CLI) take one advisory lock
        in turn, as SQLite's BEGIN IMMEDIATE makes them: two sources carrying the same paper
        must not both decide it is new."""
        with self.engine.connect().execution_options(write=True) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": WRITE_LOCK})
            yield conn

    # --- sources -----------------------------------------------------------------------------

    def sync_sources(self, configured: Iterable[tuple[str, str]]) -> None:
        """Make sure every configured (name, url) has a row; a changed URL resets its validators."""
        wanted = dict(configured)
        with self._write() as conn:
            have = dict(conn.execute(select(sources.c.name, sources.c.url)).all())
            new = [
                {"name": n, "url": u, "error_count": 0, "entries": 0}
                for n, u in wanted.items()
                if n not in have
            ]
            if new:
                conn.execute(insert(sources), new)
            for name, url in wanted.items():
                if name in have and have[name] != url:
                    conn.execute(
                        update(sources)
                        .where(sources.c.name == name)
                        .values(url=url, etag=None, last_modified=None, body_hash=None, next_fetch_at=None)
                    )

    def source_states(self) -> list[SourceState]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(sources).order_by(sources.c.name)).mappings().all()
        return [_source_state(r) for r in rows]

    def source_state(self, name: str) -> SourceState | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(sources).where(sources.c.name == name)).mappings().first()
        return _source_state(row) if row else None

    def claim(self, name: str, *, now: datetime, until: datetime) -> bool:
        """Take the lease on a source so that no other worker fetches it meanwhile."""
        with self._write() as conn:
            result = conn.execute(
                update(sources)
                .where(sources.c.name == name)
                .where((sources.c.lease_until.is_(None)) | (sources.c.lease_until < now))
                .where((sources.c.next_fetch_at.is_(None)) | (sources.c.next_fetch_at <= now))
                .values(lease_until=until)
            )
            return result.rowcount == 1

    def record_failure(self, name: str, error: str, *, now: datetime, next_fetch_at: datetime) -> None:
        """Mark a source as failing; its papers stay as they were. A source stopped for good
        (next_fetch_at STOPPED) changes what pages say: their caches are renewed."""
        with self._write() as conn:
            conn.execute(
                update(sources)
                .where(sources.c.name == name)
                .values(
                    last_fetch_at=now,
                    last_error=error[:2000],
                    error_count=sources.c.error_count + 1,
                    next_fetch_at=next_fetch_at,
                    lease_until=None,
                )
            )
            if next_fetch_at >= STOPPED:
                self._bump_version(conn)

    def record_unchanged(self, name: str, done: FetchDone, *, now: datetime) -> None:
        """A 304 or an identical body: only the fetch state moves."""
        with self._write() as conn:
            self._finish_source(conn, name, done, now, entries=None)

    def _finish_source(
        self, conn: Connection, name: str, done: FetchDone, now: datetime, entries: int | None
    ) -> None:
        values: dict[str, Any] = {
            "etag": done.etag,
            "last_modified": done.last_modified,
            "body_hash": done.body_hash,
            "last_fetch_at": now,
            "last_success_at": now,
            "last_error": None,
            "last_warning": done.warning,
            "error_count": 0,
            "next_fetch_at": done.next_fetch_at,
            "lease_until": None,
        }
        if entries is not None:
            values["entries"] = entries
        conn.execute(update(sources).where(sources.c.name == name).values(**values))

    # --- ingest ------------------------------------------------------------------------------

    @contextmanager
    def source_batch(
        self, name: str, batch: Sequence[Sighting], done: FetchDone, *, now: datetime
    ) -> Iterator[SourceBatch]:
        """One source's sightings, stored with its fetch state in one transaction: the caller
        reads the stored papers they may touch from the SourceBatch, decides how they merge
        (ingest.dedupe) and hands it the plans; all of it commits when the block ends, nothing
        if it raises. `outcome` holds the counts afterwards."""
        encoded: dict[str, tuple[Sighting, str, str]] = {}
        for s in batch:  # a feed listing one entry twice: the last copy wins
            data = encode_sighting(s)
            encoded[s.entry_id] = (s, data, digest(data))
        with self._write() as conn:
            existing = self._existing_sightings(conn, name, list(encoded))
            changed = [
                StoredSighting(s, existing[eid][2] if eid in existing else now)
                for eid, (s, _, h) in encoded.items()
                if eid not in existing or existing[eid][1] != h
            ]
            held = {existing[s.sighting.entry_id][0] for s in changed if s.sighting.entry_id in existing}
            writer = IngestWriter(
                conn,
                now,
                {eid: (d, h) for eid, (_, d, h) in encoded.items()},
                set(existing),
                mint_feed_id=self.mint_feed_id,
                tagger=self.tagger,
            )
            source_batch = SourceBatch(name, changed, held, writer, len(encoded))
            yield source_batch
            new, updated = source_batch.new, source_batch.updated
            if new or writer.removed:
                meta.add(conn, "papers", new - writer.removed)
            self._finish_source(conn, name, done, now, entries=len(encoded))
            if new or updated:
                self._bump_version(conn)

    def _existing_sightings(
        self, conn: Connection, name: str, entry_ids: list[str]
    ) -> dict[str, tuple[int, str, datetime]]:
        found: dict[str, tuple[int, str, datetime]] = {}
        query = select(
            sightings.c.entry_id, sightings.c.paper_id, sightings.c.data_hash, sightings.c.first_seen
        )
        for chunk in chunks(entry_ids):
            rows = conn.execute(query.where(sightings.c.source == name, sightings.c.entry_id.in_(chunk)))
            found.update((r.entry_id, (r.paper_id, r.data_hash, r.first_seen)) for r in rows)
        return found

    def _bump_version(self, conn: Connection) -> None:
        meta.bump_version(conn)

    def mint_feed_id(self, record: PaperRecord, first: StoredSighting) -> str:
        """An entry id for feeds, given once: the arXiv abstract URL, else a tag: URI."""
        if record.arxiv_id:
            return f"https://arxiv.org/abs/{record.arxiv_id}"
        stamp = f"{first.sighting.source}\n{first.sighting.entry_id}"
        return f"tag:{self.tag_authority},{record.first_seen:%Y-%m-%d}:paper/{digest(stamp)[:20]}"

    # --- reads -------------------------------------------------------------------------------

    def version(self) -> int:
        return self.version_stamp()[0]

    def version_stamp(self) -> tuple[int, datetime]:
        """The store's version and when it last changed (the epoch for a store never written)."""
        with self.engine.connect() as conn:
            values = {
                name: value for name, value in conn.execute(select(store_meta.c.name, store_meta.c.value))
            }
        changed = STAMP_EPOCH + timedelta(seconds=values["changed_at"]) if "changed_at" in values else EPOCH
        return int(values.get("version", 0)), changed

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def papers_page(self, query: PageQuery, *, budget: float | None = None) -> Page:
        """Papers in feed order (newest published first, ties by id); BudgetExceeded when
        finding them would take more than `budget` CPU seconds (default QUERY_BUDGET)."""
        deadline = Deadline(QUERY_BUDGET if budget is None else budget)
        with self._reading(deadline) as conn:
            found = page_ids(conn, query, deadline)
            views = self._views(conn, found.ids)
        return Page(views, found.more, found.last, found.total, found.exact)

    def digest(
        self, slug: str | None, kind: str, *, top: int, periods: int, now: datetime
    ) -> list[DigestEntry]:
        """The last `periods` periods of `kind` that ended before `now` and hold papers of the
        topic (`None`: of all papers), newest first, each with its `top` papers: by score, then
        upvotes, then date. Two index reads a period and its own papers, never the store."""
        deadline = Deadline(QUERY_BUDGET)
        found: list[tuple[Period, list[int]]] = []
        with self._reading(deadline) as conn:
            before = Period.of(kind, now).start  # the running period is not over: not yet digested
            while len(found) < periods:
                newest = conn.scalar(digest_newest(slug, before))
                if newest is None:
                    break
                period = Period.of(kind, newest)
                found.append((period, digest_top(conn, slug, period.start, period.end, top)))
                before = period.start
            views = {v.id: v for v in self._views(conn, [i for _, ids in found for i in ids])}
        return [DigestEntry(period, [views[i] for i in ids if i in views]) for period, ids in found]

    def paper(self, paper_id: int) -> PaperView | None:
        """One paper as readers see it, with every sighting and topic; None if there is none."""
        with self.engine.connect() as conn:
            found = self._views(conn, [paper_id])
        return found[0] if found else None

    def _views(self, conn: Connection, ids: list[int]) -> list[PaperView]:
        """These papers as readers see them, in the order of `ids`."""
        rows = {r["id"]: r for r in self._rows(conn, ids)}
        seen = self._sightings_of(conn, ids)
        tagged = topics_of(conn, ids)
        return [_paper_view(rows[i], seen.get(i, ()), tuple(tagged.get(i, ()))) for i in ids if i in rows]

    @staticmethod
    def _rows(conn: Connection, ids: list[int]) -> list[Any]:
        found: list[Any] = []
        for chunk in chunks(ids):
            found += conn.execute(select(papers).where(papers.c.id.in_(chunk))).mappings().all()
        return found

    @contextmanager
    def _reading(self, deadline: Deadline) -> Iterator[Connection]:
        """A read connection that the database itself stops at the deadline: SQLite through a
        progress handler, PostgreSQL through statement_timeout."""
        with self.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                with conn.begin():
                    left = deadline.wall_left()
                    timeout = max(int(left * 1000), 1) if math.isfinite(left) else 0  # 0: none
                    conn.execute(text(f"SET LOCAL statement_timeout = {timeout}"))
                    try:
                        yield conn
                    except OperationalError as exc:
                        if "statement timeout" in str(exc):  # ours: the budget, or what was left of it
                            raise deadline.exceeded() from exc
                        raise
                return
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.set_progress_handler(deadline.expired, 10_000)
            try:
                yield conn
            except OperationalError as exc:
                if "interrupted" in str(exc):
                    deadline.check()
                raise
            finally:
                raw.set_progress_handler(None, 0)

    def documents(
        self, narrowed: IndexQuery | None = None, *, budget: float | None = None
    ) -> Iterator[tuple[str, str, datetime, PaperText]]:
        """Stored papers as (id, title, published, PaperText), for previews of a query: those
        the index finds for `narrowed`, or every one; BudgetExceeded past `budget` seconds."""
        deadline = Deadline(budget if budget is not None else float("inf"))
        with self._reading(deadline) as conn:
            ids = candidate_ids(conn, narrowed, deadline=deadline) if narrowed is not None else None
            if ids is None:
                batches: Iterable[list[int]] = _id_batches(conn, deadline)
            else:
                batches = (list(chunk) for chunk in chunks(sorted(ids)))
            for batch in batches:
                deadline.check()
                seen = sources_of(conn, batch)
                for row in conn.execute(select(papers).where(papers.c.id.in_(batch)).order_by(papers.c.id)):
                    yield row.feed_id, row.title, row.published, paper_text(row, seen.get(row.id, []))

    def refresh_statistics(self) -> bool:
        """After a bulk ingest, refresh PostgreSQL's table statistics at once (autovacuum does it
        only now and then), so that its plans for search and pages fit the store as it is now.
        Done when the store has grown by a tenth, and at least 1,000 papers, since the last time;
        True if it was done. SQLite plans without such statistics: nothing to do."""
        if self.engine.dialect.name != "postgresql":
            return False
        with self.engine.connect() as conn:
            count, analyzed = meta.paper_count(conn), meta.get(conn, "analyzed_papers")
        if count - analyzed < max(1_000, analyzed // 10):
            return False
        with self._write() as conn:
            conn.execute(text("ANALYZE papers, sightings, paper_topics, paper_keys, paper_index"))
            meta.put(conn, "analyzed_papers", count)
        return True

    def paper_count(self) -> int:
        with self.engine.connect() as conn:
            return meta.paper_count(conn)

    def topic_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return topic_counts(conn)

    def topic_count_since(self, slug: str, since: datetime) -> int:
        """How many papers of a topic were published since `since`: one range of its index."""
        query = select(func.count()).where(paper_topics.c.slug == slug, paper_topics.c.published >= since)
        with self.engine.connect() as conn:
            return int(conn.scalar(query) or 0)

    def retag(
        self, *, slugs: Iterable[str] | None = None, on_batch: Callable[[int], None] | None = None
    ) -> RetagResult:
        """Re-apply the topics (all, or these) to every stored paper; nothing is fetched."""
        if self.tagger is None:
            return RetagResult()
        result = retag(self._write, self.tagger, slugs=slugs, on_batch=on_batch)
        if result.changed:
            with self._write() as conn:
                self._bump_version(conn)
        return result

    def remember_topics(self, fingerprints: Mapping[str, str]) -> None:
        """Record these definitions (slug -> topics.match.fingerprints of it) as applied after a
        full re-tag, forgetting removed topics."""
        with self._write() as conn:
            _, removed = changed_topics(conn, fingerprints)
            forget_topics(conn, removed)
            remember_topics(conn, fingerprints)

    def apply_topic_changes(
        self, fingerprints: Mapping[str, str], on_batch: Callable[[int], None] | None = None
    ) -> RetagResult | None:
        """Re-tag only the topics whose definitions (slug -> fingerprint) were added or edited
        since they were last applied; forget removed ones."""
        with self.engine.connect() as conn:
            edited, removed = changed_topics(conn, fingerprints)
        if not edited and not removed:
            return None
        with self._write() as conn:
            forget_topics(conn, removed)
        result = self.retag(slugs=edited, on_batch=on_batch) if edited else RetagResult()
        with self._write() as conn:
            remember_topics(conn, fingerprints)
            if removed:
                self._bump_version(conn)
        return result

    def _sightings_of(self, conn: Connection, ids: list[int]) -> dict[int, tuple[SightingView, ...]]:
        found: dict[int, list[SightingView]] = {}
        query = select(
            sightings.c.paper_id,
            sightings.c.source,
            sightings.c.entry_id,
            sightings.c.link,
            sightings.c.first_seen,
        ).order_by(sightings.c.first_seen, sightings.c.id)
        for chunk in chunks(ids):
            for r in conn.execute(query.where(sightings.c.paper_id.in_(chunk))):
                found.setdefault(r.paper_id, []).append(
                    SightingView(r.source, r.entry_id, r.link, r.first_seen)
                )
        return {k: tuple(v) for k, v in found.items()}


def _source_state(row: Any) -> SourceState:
    return SourceState(
        name=row["name"],
        url=row["url"],
        etag=row["etag"],
        last_modified=row["last_modified"],
        body_hash=row["body_hash"],
        last_fetch_at=row["last_fetch_at"],
        last_success_at=row["last_success_at"],
        last_error=row["last_error"],
        error_count=row["error_count"],
        next_fetch_at=row["next_fetch_at"],
        entries=row["entries"],
        last_warning=row["last_warning"],
    )


def _id_batches(conn: Connection, deadline: Deadline, size: int = 1000) -> Iterator[list[int]]:
    """Every paper id, in order, a batch at a time."""
    last = 0
    while True:
        deadline.check()
        ids = list(
            conn.scalars(select(papers.c.id).where(papers.c.id > last).order_by(papers.c.id).limit(size))
        )
        if not ids:
            return
        yield ids
        last = ids[-1]


def _paper_view(row: Any, seen: tuple[SightingView, ...], tagged: tuple[TopicMatch, ...]) -> PaperView:
    return PaperView(
        id=row["id"],
        feed_id=row["feed_id"],
        arxiv_id=row["arxiv_id"],
        version=row["version"],
        doi=row["doi"],
        title=row["title"],
        authors=tuple(row["authors"]),
        abstract=row["abstract"],
        published=row["published"],
        updated=row["updated"],
        first_seen=row["first_seen"],
        links=dict(row["links"]),
        categories=tuple(row["categories"]),
        upvotes=row["upvotes"],
        comment=row["comment"],
        journal_ref=row["journal_ref"],
        sightings=seen,
        topics=tagged,
    )
