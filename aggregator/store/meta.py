"""Small named values in store_meta: the store's version (readers' caches key on it), when it
last moved, and how many papers the store holds (kept with every write, so that counting all
papers never means reading them)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, update

from aggregator.store.schema import store_meta

STAMP_EPOCH = datetime(2020, 1, 1, tzinfo=UTC)


def add(conn: Connection, name: str, delta: int) -> None:
    """Move a counter by delta (created at delta if missing)."""
    done = conn.execute(
        update(store_meta).where(store_meta.c.name == name).values(value=store_meta.c.value + delta)
    )
    if done.rowcount == 0:
        conn.execute(insert(store_meta).values(name=name, value=delta))


def put(conn: Connection, name: str, value: int) -> None:
    done = conn.execute(update(store_meta).where(store_meta.c.name == name).values(value=value))
    if done.rowcount == 0:
        conn.execute(insert(store_meta).values(name=name, value=value))


def bump_version(conn: Connection) -> None:
    """A new version, stamped with the time ("changed_at": seconds since STAMP_EPOCH, as
    store_meta holds 32-bit integers, which Unix time outgrows in 2038)."""
    add(conn, "version", 1)
    put(conn, "changed_at", int((datetime.now(UTC) - STAMP_EPOCH).total_seconds()))


def get(conn: Connection, name: str) -> int:
    """A counter's value (0 if it was never set)."""
    found = conn.execute(select(store_meta.c.value).where(store_meta.c.name == name)).scalar()
    return int(found or 0)


def paper_count(conn: Connection) -> int:
    return get(conn, "papers")
