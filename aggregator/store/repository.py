"""The only SQL in the project: source state, the ingest write path, and reads for the web.

The ingest path is built for bulk: one batched lookup per kind of key, SQLAlchemy Core
executemany for writes, and one transaction per source so that a source's papers, sightings
and fetch state commit together or not at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Connection,
    Engine,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    update,
)

from aggregator.ingest.dedupe import (
    MIN_TITLE_KEY,
    ClusterPlan,
    KnownPaper,
    PaperRecord,
    StoredSighting,
    plan_ingest,
)
from aggregator.store.codec import decode_sighting, digest, encode_sighting, json_text, record_digest
from aggregator.store.database import make_engine, upgrade
from aggregator.store.schema import UTCDateTime, paper_keys, papers, sightings, sources, store_meta
from aggregator.types import FetchDone, PaperView, Sighting, SightingView, SourceOutcome, SourceState

ARXIV_KEY = "arxiv:"  # arXiv ids are found through papers.arxiv_id, not paper_keys
CHUNK = 900  # stays under SQLite's bound-parameter limit on old builds
SUBSTANCE = ("title", "abstract", "authors", "version")  # a change here is a real update for readers


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


@dataclass(frozen=True, slots=True)
class PageQuery:
    """Which papers a reader asks for, in feed order."""

    source: str | None = None
    since: datetime | None = None
    limit: int = 50
    offset: int = 0


class Store:
    """A database holding papers, their sightings and the sources' fetch state."""

    def __init__(self, engine: Engine, *, tag_authority: str = "localhost") -> None:
        self.engine = engine
        self.tag_authority = tag_authority

    @classmethod
    def open(cls, url: str, *, tag_authority: str = "localhost", migrate: bool = True) -> Store:
        store = cls(make_engine(url), tag_authority=tag_authority)
        if migrate:
            store.upgrade()
        return store

    def upgrade(self) -> None:
        upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(write=True) as conn, conn.begin():
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
                writer = _BatchWriter(
                    self, conn, now, {eid: (d, h) for eid, (_, d, h) in encoded.items()}, set(existing)
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
        for chunk in _chunks(entry_ids):
            rows = conn.execute(query.where(sightings.c.source == name, sightings.c.entry_id.in_(chunk)))
            found.update((r.entry_id, (r.paper_id, r.data_hash, r.first_seen)) for r in rows)
        return found

    def _bump_version(self, conn: Connection) -> None:
        done = conn.execute(
            update(store_meta).where(store_meta.c.name == "version").values(value=store_meta.c.value + 1)
        )
        if done.rowcount == 0:
            conn.execute(insert(store_meta).values(name="version", value=1))

    def mint_feed_id(self, record: PaperRecord, first: StoredSighting) -> str:
        """An entry id for feeds, given once: the arXiv abstract URL, else a tag: URI."""
        if record.arxiv_id:
            return f"https://arxiv.org/abs/{record.arxiv_id}"
        stamp = f"{first.sighting.source}\n{first.sighting.entry_id}"
        return f"tag:{self.tag_authority},{record.first_seen:%Y-%m-%d}:paper/{digest(stamp)[:20]}"

    # --- reads -------------------------------------------------------------------------------

    def version(self) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(select(store_meta.c.value).where(store_meta.c.name == "version")).scalar()
        return int(value or 0)

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def papers_page(self, query: PageQuery) -> tuple[list[PaperView], int]:
        """Papers in feed order (newest published first, ties by id), and how many match in all."""
        conditions: list[ColumnElement[bool]] = []
        if query.source:
            conditions.append(
                papers.c.id.in_(select(sightings.c.paper_id).where(sightings.c.source == query.source))
            )
        if query.since:
            conditions.append(papers.c.updated >= query.since)
        with self.engine.connect() as conn:
            total = conn.execute(select(func.count()).select_from(papers).where(*conditions)).scalar_one()
            rows = (
                conn.execute(
                    select(papers)
                    .where(*conditions)
                    .order_by(papers.c.published.desc(), papers.c.id.desc())
                    .limit(query.limit)
                    .offset(query.offset)
                )
                .mappings()
                .all()
            )
            seen = self._sightings_of(conn, [r["id"] for r in rows])
        return [_paper_view(r, seen.get(r["id"], ())) for r in rows], int(total)

    def _sightings_of(self, conn: Connection, ids: list[int]) -> dict[int, tuple[SightingView, ...]]:
        found: dict[int, list[SightingView]] = {}
        query = select(
            sightings.c.paper_id,
            sightings.c.source,
            sightings.c.entry_id,
            sightings.c.link,
            sightings.c.first_seen,
        ).order_by(sightings.c.first_seen, sightings.c.id)
        for chunk in _chunks(ids):
            for r in conn.execute(query.where(sightings.c.paper_id.in_(chunk))):
                found.setdefault(r.paper_id, []).append(
                    SightingView(r.source, r.entry_id, r.link, r.first_seen)
                )
        return {k: tuple(v) for k, v in found.items()}


class _BatchWriter:
    """Loads the papers a batch may touch and writes the plans for them, in bulk."""

    def __init__(
        self,
        store: Store,
        conn: Connection,
        now: datetime,
        encoded: dict[str, tuple[str, str]],
        stored_entries: set[str],
    ) -> None:
        self.store, self.conn, self.now = store, conn, now
        self.encoded = encoded  # entry id -> (data, hash) of this source's batch
        self.stored_entries = stored_entries  # entry ids of this source already in the store
        self.rows: dict[int, Any] = {}
        self.keys: dict[str, int] = {}

    def load_candidates(self, changed: Sequence[StoredSighting], held: set[int]) -> list[KnownPaper]:
        wanted = {k for s in changed for k in s.sighting.keys}
        arxiv_ids = sorted(k.removeprefix(ARXIV_KEY) for k in wanted if k.startswith(ARXIV_KEY))
        other_keys = sorted(k for k in wanted if not k.startswith(ARXIV_KEY))
        titles = list({s.sighting.title_key for s in changed if len(s.sighting.title_key) >= MIN_TITLE_KEY})
        ids = set(held)
        for chunk in _chunks(arxiv_ids):
            ids.update(self.conn.scalars(select(papers.c.id).where(papers.c.arxiv_id.in_(chunk))))
        for chunk in _chunks(other_keys):
            query = select(paper_keys.c.key, paper_keys.c.paper_id).where(paper_keys.c.key.in_(chunk))
            for key, pid in self.conn.execute(query):
                self.keys[key] = pid
                ids.add(pid)
        for chunk in _chunks(titles):
            ids.update(
                self.conn.scalars(select(sightings.c.paper_id).where(sightings.c.title_key.in_(chunk)))
            )
        if not ids:
            return []
        members: dict[int, list[StoredSighting]] = {}
        for chunk in _chunks(sorted(ids)):
            for row in self.conn.execute(select(papers).where(papers.c.id.in_(chunk))).mappings():
                self.rows[row["id"]] = row
            query = select(sightings.c.paper_id, sightings.c.first_seen, sightings.c.data)
            for r in self.conn.execute(query.where(sightings.c.paper_id.in_(chunk))):
                members.setdefault(r.paper_id, []).append(
                    StoredSighting(decode_sighting(r.data), r.first_seen)
                )
        for chunk in _chunks(sorted(ids)):  # keys already held by these papers need no insert
            for key, pid in self.conn.execute(
                select(paper_keys.c.key, paper_keys.c.paper_id).where(paper_keys.c.paper_id.in_(chunk))
            ):
                self.keys[key] = pid
        return [
            KnownPaper(pid, self.rows[pid]["first_seen"], tuple(members.get(pid, ())))
            for pid in sorted(self.rows)
        ]

    def apply(self, plans: list[ClusterPlan]) -> tuple[int, int]:
        """Write every plan; returns (papers created, papers changed)."""
        fresh = [p for p in plans if p.survivor is None]
        ids = self._insert_papers(fresh)
        updated = 0
        for plan in plans:
            if plan.survivor is not None and self._update_paper(plan):
                updated += 1
        owner = {id(p): pid for p, pid in zip(fresh, ids, strict=True)}
        owner.update({id(p): p.survivor for p in plans if p.survivor is not None})
        self._write_sightings(plans, owner)
        self._write_keys(plans, owner)
        return len(fresh), updated

    def _insert_papers(self, plans: list[ClusterPlan]) -> list[int]:
        if not plans:
            return []
        rows = []
        for plan in plans:
            values = _paper_values(plan.record)
            published = plan.record.published or plan.record.first_seen
            first = min(plan.sightings, key=lambda s: (s.first_seen, s.sighting.source, s.sighting.entry_id))
            rows.append(
                {
                    **values,
                    "feed_id": self.store.mint_feed_id(plan.record, first),
                    "published": published,
                    "updated": max(published, plan.record.source_updated or published),
                    "first_seen": plan.record.first_seen,
                    "content_hash": record_digest(values),
                }
            )
        _bulk_insert(self.conn, papers, rows)
        # One batched lookup of the new ids: a multi-row INSERT cannot return them in order on SQLite.
        feed_ids = [row["feed_id"] for row in rows]
        found: dict[str, int] = {}
        query = select(papers.c.feed_id, papers.c.id)
        for chunk in _chunks(feed_ids):
            found.update((f, i) for f, i in self.conn.execute(query.where(papers.c.feed_id.in_(chunk))))
        return [found[f] for f in feed_ids]

    def _update_paper(self, plan: ClusterPlan) -> bool:
        """Merge absorbed papers into the survivor and refresh its record; True if readers see a change."""
        assert plan.survivor is not None
        if plan.absorbed:
            absorbed = list(plan.absorbed)
            self.conn.execute(
                update(sightings).where(sightings.c.paper_id.in_(absorbed)).values(paper_id=plan.survivor)
            )
            self.conn.execute(
                update(paper_keys).where(paper_keys.c.paper_id.in_(absorbed)).values(paper_id=plan.survivor)
            )
            self.conn.execute(delete(papers).where(papers.c.id.in_(absorbed)))
            for key, pid in list(self.keys.items()):
                if pid in plan.absorbed:
                    self.keys[key] = plan.survivor
        old = self.rows[plan.survivor]
        values = _paper_values(plan.record)
        content_hash = record_digest(values)
        if content_hash == old["content_hash"] and not plan.absorbed:
            return False
        published = plan.record.published or plan.record.first_seen
        updated = old["updated"]
        if any(values[name] != old[name] for name in SUBSTANCE):
            source_updated = plan.record.source_updated
            updated = source_updated if source_updated and source_updated > updated else self.now
        self.conn.execute(
            update(papers)
            .where(papers.c.id == plan.survivor)
            .values(
                **values,
                published=published,
                updated=max(updated, published),
                first_seen=plan.record.first_seen,
                content_hash=content_hash,
            )
        )
        return True

    def _write_sightings(self, plans: list[ClusterPlan], owner: dict[int, int]) -> None:
        inserts, updates = [], []
        for plan in plans:
            for stored in plan.changed:
                s = stored.sighting
                data, data_hash = self.encoded[s.entry_id]
                row = {
                    "paper_id": owner[id(plan)],
                    "link": s.link,
                    "title_key": s.title_key,
                    "data": data,
                    "data_hash": data_hash,
                }
                if s.entry_id not in self.stored_entries:
                    inserts.append(
                        {**row, "source": s.source, "entry_id": s.entry_id, "first_seen": self.now}
                    )
                else:
                    updates.append({**row, "b_source": s.source, "b_entry_id": s.entry_id})
        if inserts:
            _bulk_insert(self.conn, sightings, inserts)
        if updates:
            self.conn.execute(
                update(sightings)
                .where(
                    sightings.c.source == bindparam("b_source"),
                    sightings.c.entry_id == bindparam("b_entry_id"),
                )
                .values(
                    paper_id=bindparam("paper_id"),
                    link=bindparam("link"),
                    title_key=bindparam("title_key"),
                    data=bindparam("data"),
                    data_hash=bindparam("data_hash"),
                ),
                updates,
            )

    def _write_keys(self, plans: list[ClusterPlan], owner: dict[int, int]) -> None:
        rows = []
        for plan in plans:
            pid = owner[id(plan)]
            for key in plan.record.keys:
                if key not in self.keys and not key.startswith(ARXIV_KEY):
                    self.keys[key] = pid
                    rows.append({"key": key, "paper_id": pid})
        if rows:
            self.conn.execute(_insert_ignore(self.conn, paper_keys), rows)


def _bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """executemany straight to the driver: the ingest hot path, where SQLAlchemy's per-value
    processing would cost more than the database itself. Values are converted here as the
    column types would: JSON as text, datetimes as SQLite's text form (PostgreSQL takes them)."""
    names = list(rows[0])
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
        f"VALUES ({', '.join([mark] * len(names))})"
    )
    convert = [_converter(table.c[n].type, conn.dialect.name) for n in names]
    params = [tuple(f(row[n]) if f else row[n] for n, f in zip(names, convert, strict=True)) for row in rows]
    conn.exec_driver_sql(sql, params)


def _converter(column_type: Any, dialect: str) -> Callable[[Any], Any] | None:
    if isinstance(column_type, JSON):
        return _json_text
    if isinstance(column_type, UTCDateTime) and dialect == "sqlite":
        return _sqlite_datetime
    return None


def _json_text(value: Any) -> str | None:
    return None if value is None else json_text(value)


@lru_cache(maxsize=4096)  # a listing's entries share a handful of dates
def _sqlite_datetime(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")  # strftime's %f is slow


def _insert_ignore(conn: Connection, table: Any) -> Any:
    """INSERT that leaves an existing key to the paper that already holds it."""
    if conn.dialect.name == "postgresql":  # imported here: the PostgreSQL dialect costs 50 ms at start
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()
    from sqlalchemy.dialects import sqlite

    return sqlite.insert(table).on_conflict_do_nothing()


def _paper_values(record: PaperRecord) -> dict[str, Any]:
    return {
        "arxiv_id": record.arxiv_id,
        "version": record.version,
        "doi": record.doi,
        "title": record.title,
        "authors": list(record.authors),
        "abstract": record.abstract,
        "categories": list(record.categories),
        "primary_category": record.primary_category,
        "announce_types": list(record.announce_types),
        "links": dict(record.links),
        "upvotes": record.upvotes,
        "comment": record.comment,
        "journal_ref": record.journal_ref,
    }


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


def _paper_view(row: Any, seen: tuple[SightingView, ...]) -> PaperView:
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
    )
