"""Who may fetch what, shared by every worker of a store: leases on sources, held by a token and
renewed while the fetch runs, and per-host request slots.

A lease is taken with a conditional UPDATE (on PostgreSQL of a row picked with FOR UPDATE SKIP
LOCKED, so that a claim never waits behind the transaction that is recording that source); the
transaction that records a fetch first re-takes the source's row with the same token
(`hold_lease`) and gives up the whole fetch if the token changed. A worker that dies leaves its
lease to run out; one that stalls past it finds its work refused.

A host slot is the time the next request to a host may start. A worker takes it (the row is
moved past its request's deadline meanwhile), makes its request, and puts it back at the end of
the request plus the host's delay, so that the gap between two requests holds across processes
whatever the requests cost.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import Connection, select, update

from aggregator.errors import LeaseLost
from aggregator.store.bulk import insert_ignore
from aggregator.store.schema import host_slots, sources
from aggregator.types import Lease


def claim(conn: Connection, name: str, *, now: datetime, until: datetime) -> Lease | None:
    """The lease on `name` if it is due and nobody else holds a live lease on it."""
    free = (sources.c.lease_until.is_(None)) | (sources.c.lease_until < now)
    due = (sources.c.next_fetch_at.is_(None)) | (sources.c.next_fetch_at <= now)
    claimable = select(sources.c.name).where(sources.c.name == name, free, due)
    if conn.dialect.name == "postgresql":
        claimable = claimable.with_for_update(skip_locked=True)
    token = secrets.token_hex(16)
    result = conn.execute(
        update(sources)
        .where(sources.c.name.in_(claimable.scalar_subquery()), free, due)
        .values(lease_until=until, lease_token=token)
    )
    return Lease(name, token) if result.rowcount == 1 else None


def renew(conn: Connection, lease: Lease, *, until: datetime) -> bool:
    """Extend a lease; False only once another worker holds the source. A lease whose fetch was
    just recorded (no holder now) or whose row this worker's own recording transaction has
    locked counts as still held: nothing to renew, nothing lost."""
    mine = select(sources.c.name).where(sources.c.name == lease.source, sources.c.lease_token == lease.token)
    if conn.dialect.name == "postgresql":
        mine = mine.with_for_update(skip_locked=True)
    result = conn.execute(
        update(sources)
        .where(sources.c.name.in_(mine.scalar_subquery()), sources.c.lease_token == lease.token)
        .values(lease_until=until)
    )
    if result.rowcount == 1:
        return True
    token = conn.execute(select(sources.c.lease_token).where(sources.c.name == lease.source)).scalar()
    return token is None or token == lease.token


def hold_lease(conn: Connection, name: str, lease: Lease | None) -> None:
    """Inside the transaction that records a fetch of `name`: lock the source's row and check the
    lease is still this worker's. LeaseLost rolls the whole transaction back. No lease (a manual
    ingest): the row is locked all the same, for the two writers of one source to take turns."""
    where = [sources.c.name == name]
    if lease is not None:
        where.append(sources.c.lease_token == lease.token)
    result = conn.execute(update(sources).where(*where).values(name=name))
    if lease is not None and result.rowcount != 1:
        raise LeaseLost(f"store: the lease on {name} passed to another worker; its work is discarded")


def take_host_slot(conn: Connection, host: str, *, now: datetime, hold_until: datetime) -> datetime | None:
    """Take the slot of `host` (None: taken, request now; it is held until `hold_until` unless put
    back sooner), or the time it frees."""
    if conn.execute(select(host_slots.c.host).where(host_slots.c.host == host)).first() is None:
        conn.execute(insert_ignore(conn, host_slots), {"host": host, "next_at": now})
    result = conn.execute(
        update(host_slots)
        .where(host_slots.c.host == host, host_slots.c.next_at <= now)
        .values(next_at=hold_until)
    )
    if result.rowcount == 1:
        return None
    frees: datetime = conn.execute(select(host_slots.c.next_at).where(host_slots.c.host == host)).scalar_one()
    return frees


def put_back_host_slot(conn: Connection, host: str, *, next_at: datetime, held: datetime) -> None:
    """The request is done: the next may start at `next_at`. Only if the slot is still this
    worker's hold (`held`, what take_host_slot set): a request that outlived its hold has lost
    the slot to another, whose spacing stands."""
    conn.execute(
        update(host_slots)
        .where(host_slots.c.host == host, host_slots.c.next_at == held)
        .values(next_at=next_at)
    )
