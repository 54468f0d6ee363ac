"""The store's front door, and its writes: opening and migrating, source state and leases,
one source's batch as one transaction, topic re-tagging. The reads it answers live in reads.py
(`StoreReads`); the SQL of the ingest write path in writer.py, of topics in tagging.py.

A source's papers, sightings, topics and fetch state commit together or not at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, text, update
from sqlalchemy.exc import DBAPIError

from aggregator.errors import WriteConflict
from aggregator.records import (
    ClusterPlan,
    PaperRecord,
    PaperTagger,
    StoredCandidates,
    StoredSighting,
    TitleReach,
)
from aggregator.store import leases, locks, meta
from aggregator.store.bulk import chunks, insert_ignore
from aggregator.store.codec import digest, encode_hints, encode_sighting
from aggregator.store.database import make_engine, upgrade
from aggregator.store.indexing import index_is_current, rebuild_index
from aggregator.store.pages import (
    PageQuery,
    TextQuery,
)
from aggregator.store.reads import QUERY_BUDGET, Page, StoreReads
from aggregator.store.schema import sightings, sources
from aggregator.store.search_turns import SEARCHES_AT_ONCE, SearchTurns
from aggregator.store.tagging import (
    RetagResult,
    changed_topics,
    forget_topics,
    remember_topics,
    retag,
)
from aggregator.store.writer import IngestWriter
from aggregator.types import (
    STOPPED,
    FetchDone,
    Lease,
    Sighting,
    SourceOutcome,
)

# deadlock_detected, serialization_failure, unique_violation
_CONFLICTS = frozenset({"40P01", "40001", "23505"})

__all__ = ["QUERY_BUDGET", "Page", "PageQuery", "Store", "TextQuery"]


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

    def candidates(self, reach: TitleReach) -> StoredCandidates:
        """The stored papers the changed sightings may touch (IngestWriter.load_candidates)."""
        return self._writer.load_candidates(self.changed, self._held, reach)

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


class Store(StoreReads):
    """A database holding papers, their sightings and the sources' fetch state."""

    def __init__(
        self,
        engine: Engine,
        *,
        tag_authority: str = "localhost",
        tagger: PaperTagger | None = None,
        searches_at_once: int = SEARCHES_AT_ONCE,
    ) -> None:
        self.engine = engine
        self.searches = SearchTurns(searches_at_once)
        # PostgreSQL orders writers itself; SQLite writers of this process take turns here.
        self._local_writes: AbstractContextManager[Any] = (
            nullcontext() if engine.dialect.name == "postgresql" else threading.Lock()
        )
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
        connections: int = 5,
        searches_at_once: int = SEARCHES_AT_ONCE,
    ) -> Store:
        store = cls(
            make_engine(url, connections=connections),
            tag_authority=tag_authority,
            tagger=tagger,
            searches_at_once=searches_at_once,
        )
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
    def _write(self, *, exclusive: bool = True) -> Iterator[Connection]:
        """A write transaction. `exclusive`: work on papers that no finer lock covers (topics,
        re-tagging, migrations): on PostgreSQL it takes the store's lock exclusively
        (store/locks.py). Otherwise the caller takes what locks it needs: a source's batch its
        dedupe keys, a lease or a host slot its row. In one process, SQLite writers queue on a
        lock rather than poll the database's busy handler."""
        with self._local_writes, self.engine.connect().execution_options(write=True) as conn, conn.begin():
            if exclusive:
                locks.lock_store(conn, exclusive=True)
            yield conn

    # --- sources -----------------------------------------------------------------------------

    def sync_sources(self, configured: Iterable[tuple[str, str]]) -> None:
        """Make sure every configured (name, url) has a row; a changed URL resets its validators."""
        wanted = dict(configured)
        # Sources' rows only: under the store's lock it could wait on a row a writer holds while
        # that writer waits for the store.
        with self._write(exclusive=False) as conn:
            have = dict(conn.execute(select(sources.c.name, sources.c.url)).all())
            new = [
                {"name": n, "url": u, "error_count": 0, "entries": 0}
                for n, u in wanted.items()
                if n not in have
            ]
            if new:
                conn.execute(insert_ignore(conn, sources), new)  # another process may add it meanwhile
            for name, url in wanted.items():
                if name in have and have[name] != url:
                    conn.execute(
                        update(sources)
                        .where(sources.c.name == name)
                        .values(url=url, etag=None, last_modified=None, body_hash=None, next_fetch_at=None)
                    )

    def claim(self, name: str, *, now: datetime, until: datetime) -> Lease | None:
        """Take the lease on a due source so that no other worker fetches it until `until` (or
        until it is renewed); None if it is not due or another worker holds it."""
        with self._write(exclusive=False) as conn:
            return leases.claim(conn, name, now=now, until=until)

    def renew(self, lease: Lease, *, until: datetime) -> bool:
        """Extend a lease while its fetch runs; False once it has passed to another worker."""
        with self._write(exclusive=False) as conn:
            return leases.renew(conn, lease, until=until)

    def take_host_slot(self, host: str, *, now: datetime, hold_until: datetime) -> datetime | None:
        """The right to send the next request to `host` now (None), or when it frees."""
        with self._write(exclusive=False) as conn:
            return leases.take_host_slot(conn, host, now=now, hold_until=hold_until)

    def put_back_host_slot(self, host: str, *, next_at: datetime, held: datetime) -> None:
        """The request is over: the next to `host` may start at `next_at` (if the slot is still
        held as `held`, what take_host_slot was given)."""
        with self._write(exclusive=False) as conn:
            leases.put_back_host_slot(conn, host, next_at=next_at, held=held)

    def record_failure(
        self, name: str, error: str, *, now: datetime, next_fetch_at: datetime, lease: Lease | None = None
    ) -> None:
        """Mark a source as failing; its papers stay as they were. A source stopped for good
        (next_fetch_at STOPPED) changes what pages say: their caches are renewed. With a lease:
        only while it is still this worker's (LeaseLost otherwise)."""
        with self._write(exclusive=False) as conn:  # the source's row only: no paper is written
            leases.hold_lease(conn, name, lease)
            conn.execute(
                update(sources)
                .where(sources.c.name == name)
                .values(
                    last_fetch_at=now,
                    last_error=error[:2000],
                    error_count=sources.c.error_count + 1,
                    next_fetch_at=next_fetch_at,
                    lease_until=None,
                    lease_token=None,
                )
            )
            if next_fetch_at >= STOPPED:
                self._bump_version(conn)

    def record_unchanged(
        self, name: str, done: FetchDone, *, now: datetime, lease: Lease | None = None
    ) -> None:
        """A 304 or an identical body: only the fetch state moves."""
        with self._write(exclusive=False) as conn:
            leases.hold_lease(conn, name, lease)
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
            "lease_token": None,
            "hints": encode_hints(done.hints),
        }
        if entries is not None:
            values["entries"] = entries
        conn.execute(update(sources).where(sources.c.name == name).values(**values))

    # --- ingest ------------------------------------------------------------------------------

    @contextmanager
    def source_batch(
        self,
        name: str,
        batch: Sequence[Sighting],
        done: FetchDone,
        *,
        now: datetime,
        lease: Lease | None = None,
    ) -> Iterator[SourceBatch]:
        """One source's sightings, stored with its fetch state in one transaction: the caller
        reads the stored papers they may touch from the SourceBatch, decides how they merge
        (ingest.dedupe) and hands it the plans; all of it commits when the block ends, nothing
        if it raises. `outcome` holds the counts afterwards. With a lease: only while it is
        still this worker's (LeaseLost otherwise, and nothing is written)."""
        encoded: dict[str, tuple[Sighting, str, str]] = {}
        for s in batch:  # a feed listing one entry twice: the last copy wins
            data = encode_sighting(s)
            encoded[s.entry_id] = (s, data, digest(data))
        with self._conflicts(), self._write(exclusive=False) as conn:
            leases.hold_lease(conn, name, lease)
            existing = self._existing_sightings(conn, name, list(encoded))
            changed = [
                StoredSighting(s, existing[eid][2] if eid in existing else now)
                for eid, (s, _, h) in encoded.items()
                if eid not in existing or existing[eid][1] != h
            ]
            locks.lock_keys(conn, locks.dedupe_keys(s.sighting for s in changed))
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

    @contextmanager
    def _conflicts(self) -> Iterator[None]:
        """PostgreSQL's word that two writers met (a deadlock, a key taken meanwhile) as a
        WriteConflict: the batch is worth trying again from the start."""
        try:
            yield
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) in _CONFLICTS:
                raise WriteConflict(f"store: another writer got there first ({exc.orig})") from exc
            raise

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
            conn.execute(
                text("ANALYZE papers, sightings, paper_topics, paper_keys, paper_index, paper_pairs")
            )
            meta.put(conn, "analyzed_papers", count)
        return True

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
