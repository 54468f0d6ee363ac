"""How writers of papers keep out of each other's way on PostgreSQL (SQLite has one writer).

A batch of sightings takes a transaction-scoped advisory lock on each dedupe key it carries
(arXiv id, DOI, URL, title), in one statement and in sorted order, after a shared lock on the
store: two batches that could decide the same paper is new, or merge into the same title,
take turns; batches about other papers write at the same time. The stored papers a batch loads
to merge into are locked as rows (FOR UPDATE, by id), so a merge always starts from the latest
committed state. Work on every paper at once (re-tagging, topic changes) takes the store's lock
exclusively. A batch with more keys than a transaction should lock (a first fetch of a large
feed) takes the exclusive lock instead: it would collide with nearly everyone anyway.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import Connection, text

from aggregator.records import MIN_TITLE_KEY
from aggregator.types import Sighting

STORE_LOCK = 0x70617065  # "pape": the lock every paper writer takes, shared or exclusive
# PostgreSQL's lock table holds max_locks_per_transaction (64) x max_connections locks, shared by
# every session: a batch with more keys takes the store instead, however many fetch at once.
MAX_KEY_LOCKS = 64


def lock_store(conn: Connection, *, exclusive: bool) -> None:
    if conn.dialect.name != "postgresql":
        return
    function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    conn.execute(text(f"SELECT {function}(:key)"), {"key": STORE_LOCK})


def lock_keys(conn: Connection, keys: Iterable[str]) -> None:
    """The batch's dedupe keys, each as a 64-bit lock, in sorted order (no two writers can wait
    on each other); the store's lock first (shared), or exclusively for a very large batch."""
    if conn.dialect.name != "postgresql":
        return
    numbers = sorted({key_number(k) for k in keys})
    if len(numbers) > MAX_KEY_LOCKS:
        lock_store(conn, exclusive=True)
        return
    lock_store(conn, exclusive=False)
    if numbers:
        # unnest yields the array in order, and each lock is taken as its row is produced
        conn.execute(
            text("SELECT count(pg_advisory_xact_lock(k)) FROM unnest(CAST(:keys AS bigint[])) AS k"),
            {"keys": numbers},
        )


def dedupe_keys(batch: Iterable[Sighting]) -> set[str]:
    """Every key dedupe may merge these sightings on: identity keys and titles."""
    found: set[str] = set()
    for sighting in batch:
        found.update(sighting.keys)
        if len(sighting.title_key) >= MIN_TITLE_KEY:
            found.add("title:" + sighting.title_key)
    return found


def key_number(key: str) -> int:
    """A dedupe key as a signed 64-bit lock number (the lock of the store itself aside)."""
    number = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
    return number if number != STORE_LOCK else number + 1
