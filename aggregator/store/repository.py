"""The store's front door: source state, one source's ingest as one transaction, topic
re-tagging, and the reads the web layer needs. SQL lives here and in the store modules it uses
(writer.py for the ingest write path, tagging.py for topics, bulk.py for bulk helpers).

A source's papers, sightings, topics and fetch state commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Select, func, insert, select, text, update

from aggregator.ingest.dedupe import PaperRecord, StoredSighting, plan_ingest
from aggregator.store.bulk import chunks
from aggregator.store.codec import digest, encode_sighting
from aggregator.store.database import make_engine, upgrade
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
from aggregator.store.writer import IngestWriter, paper_document
from aggregator.topics.match import Document, Tagger, TopicSpec
from aggregator.types import (
    FetchDone,
    PaperView,
    Sighting,
    SightingView,
    SourceOutcome,
    SourceState,
    TopicMatch,
)

STAMP_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
WRITE_LOCK = 0x70617065  # "pape": the advisory lock every write transaction takes on PostgreSQL


@dataclass(frozen=True, slots=True)
class PageQuery:
    """Which papers a reader asks for, in feed order."""

    source: str | None = None
    topic: str | None = None
    since: datetime | None = None
    limit: int = 50
    offset: int = 0
    matches: Callable[[Document], bool] | None = None  # `q=`: a query matched paper by paper
    min_score: float | None = None  # in the topic (or, without one, in any topic)


class Store:
    """A database holding papers, their sightings and the sources' fetch state."""

    def __init__(
        self, engine: Engine, *, tag_authority: str = "localhost", tagger: Tagger | None = None
    ) -> None:
        self.engine = engine
        self.tag_authority = tag_authority
        self.tagger = tagger  # papers written are tagged with these topics

    @classmethod
    def open(
        cls, url: str, *, tag_authority: str = "localhost", tagger: Tagger | None = None, migrate: bool = True
    ) -> Store:
        store = cls(make_engine(url), tag_authority=tag_authority, tagger=tagger)
        if migrate:
            store.upgrade()
        return store

    def upgrade(self) -> None:
        upgrade(self.engine)

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
        """Mark a source as failing; its papers stay as they were."""
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
            "error_count": 0,
            "next_fetch_at": done.next_fetch_at,
            "lease_until": None,
        }
        if entries is not None:
            values["entries"] = entries
        conn.execute(update(sources).where(sources.c.name == name).values(**values))

    # --- ingest ------------------------------------------------------------------------------

    def ingest(
        self, name: str, batch: Sequence[Sighting], done: FetchDone, *, now: datetime
    ) -> SourceOutcome:
        """Store one source's sightings, merged into papers, with its fetch state, atomically."""
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
            new = updated = 0
            if changed:
                held = {existing[s.sighting.entry_id][0] for s in changed if s.sighting.entry_id in existing}
                writer = IngestWriter(
                    conn,
                    now,
                    {eid: (d, h) for eid, (_, d, h) in encoded.items()},
                    set(existing),
                    mint_feed_id=self.mint_feed_id,
                    tagger=self.tagger,
                )
                known = writer.load_candidates(changed, held)
                new, updated = writer.apply(plan_ingest(changed, known))
            self._finish_source(conn, name, done, now, entries=len(encoded))
            if new or updated:
                self._bump_version(conn)
        return SourceOutcome(name, new=new, updated=updated, unchanged=len(encoded) - new - updated)

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
        """Readers' caches key on this number; "changed_at" is when it moved (seconds since
        STAMP_EPOCH: store_meta holds 32-bit integers, which Unix time outgrows in 2038)."""
        done = conn.execute(
            update(store_meta).where(store_meta.c.name == "version").values(value=store_meta.c.value + 1)
        )
        if done.rowcount == 0:
            conn.execute(insert(store_meta).values(name="version", value=1))
        stamp = int((datetime.now(UTC) - STAMP_EPOCH).total_seconds())
        stamped = update(store_meta).where(store_meta.c.name == "changed_at").values(value=stamp)
        if conn.execute(stamped).rowcount == 0:
            conn.execute(insert(store_meta).values(name="changed_at", value=stamp))

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

    def papers_page(self, query: PageQuery) -> tuple[list[PaperView], int]:
        """Papers in feed order (newest published first, ties by id), and how many match in all."""
        base = select(papers)
        order = (papers.c.published.desc(), papers.c.id.desc())
        if query.topic:  # straight off the (slug, published, paper_id) index
            on_topic = (paper_topics.c.paper_id == papers.c.id) & (paper_topics.c.slug == query.topic)
            if query.min_score:
                on_topic = on_topic & (paper_topics.c.score >= query.min_score)
            base = base.join(paper_topics, on_topic)
            order = (paper_topics.c.published.desc(), paper_topics.c.paper_id.desc())
        elif query.min_score:
            scored = select(paper_topics.c.paper_id).where(paper_topics.c.score >= query.min_score)
            base = base.where(papers.c.id.in_(scored))
        if query.source:
            base = base.where(
                papers.c.id.in_(select(sightings.c.paper_id).where(sightings.c.source == query.source))
            )
        if query.since:
            base = base.where(papers.c.updated >= query.since)
        rows: Sequence[Any]
        with self.engine.connect() as conn:
            if query.matches is not None:
                rows, total = self._filtered(conn, base.order_by(*order), query)
            else:
                total = conn.execute(select(func.count()).select_from(base.subquery())).scalar_one()
                rows = (
                    conn.execute(base.order_by(*order).limit(query.limit).offset(query.offset))
                    .mappings()
                    .all()
                )
            ids = [r["id"] for r in rows]
            seen = self._sightings_of(conn, ids)
            tagged = topics_of(conn, ids)
        views = [_paper_view(r, seen.get(r["id"], ()), tuple(tagged.get(r["id"], ()))) for r in rows]
        return views, int(total)

    def _filtered(self, conn: Connection, ordered: Select[Any], query: PageQuery) -> tuple[list[Any], int]:
        """Pages of a query the database cannot answer (`q=`): every candidate is matched here."""
        assert query.matches is not None
        page: list[Any] = []
        total = 0
        for batch in _batches(conn.execute(ordered), 1000):
            seen = sources_of(conn, [r.id for r in batch])
            for row in batch:
                if query.matches(paper_document(row, seen.get(row.id, []))):
                    if query.offset <= total < query.offset + query.limit:
                        page.append(row._mapping)
                    total += 1
        return page, total

    def documents(self) -> Iterator[tuple[str, str, datetime, Document]]:
        """Every stored paper as (id, title, published, Document), for previews of a query."""
        query = select(papers).order_by(papers.c.id)
        with self.engine.connect() as conn:
            for batch in _batches(conn.execute(query), 1000):
                seen = sources_of(conn, [r.id for r in batch])
                for row in batch:
                    yield row.feed_id, row.title, row.published, paper_document(row, seen.get(row.id, []))

    def paper_count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(papers)).scalar_one())

    def topic_counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return topic_counts(conn)

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

    def remember_topics(self, specs: Sequence[TopicSpec]) -> None:
        """Record these definitions as applied (after a full re-tag), forgetting removed topics."""
        with self._write() as conn:
            _, removed = changed_topics(conn, specs)
            forget_topics(conn, removed)
            remember_topics(conn, specs)

    def apply_topic_changes(
        self, specs: Sequence[TopicSpec], on_batch: Callable[[int], None] | None = None
    ) -> RetagResult | None:
        """Re-tag only the topics added or edited since they were last applied; forget removed ones."""
        with self.engine.connect() as conn:
            edited, removed = changed_topics(conn, specs)
        if not edited and not removed:
            return None
        with self._write() as conn:
            forget_topics(conn, removed)
        result = self.retag(slugs=edited, on_batch=on_batch) if edited else RetagResult()
        with self._write() as conn:
            remember_topics(conn, specs)
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
    )


def _batches(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


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
