"""Building the full-text index over the papers already stored: by migration 0004, and again
whenever the way text is cut into atoms changes (INDEX_VERSIONS), so that the index and the
matcher never disagree about what a paper says."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, select, text

from aggregator.store import meta
from aggregator.store.rows import index_entry
from aggregator.store.schema import papers
from aggregator.store.search import create_index, drop_index, finish_index, write_index
from aggregator.store.tagging import DOCUMENT_COLUMNS, sources_of

# Bump when atoms(), indexed_fields() or the index's tokens change: stores built before are
# rebuilt at the next start. Per database, so that a change to one leaves the other alone.
INDEX_VERSIONS = {
    "sqlite": 2,  # 2: token positions (phrases)
    "postgresql": 4,  # 3: token positions (phrases), CUT past its limits; 4: paper_pairs
}


def index_version(conn: Connection) -> int:
    """The version of the index this code writes on this connection's database."""
    return INDEX_VERSIONS[conn.dialect.name]


BATCH = 2000


def fill_index(conn: Connection, on_batch: Callable[[int], None] | None = None) -> int:
    """Index every stored paper, in id order, a batch at a time (a million never sit in memory
    at once), then build what `create_index(filled_first=True)` left; returns how many. The
    index must be empty."""
    last = done = 0
    while True:
        rows = conn.execute(
            select(*DOCUMENT_COLUMNS).where(papers.c.id > last).order_by(papers.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        seen = sources_of(conn, [r.id for r in rows])
        entries = [(r.id, index_entry(r, seen.get(r.id, []))) for r in rows]
        write_index(conn, entries, replace=False)
        last, done = rows[-1].id, done + len(rows)
        if on_batch:
            on_batch(len(rows))
    finish_index(conn)
    meta.put(conn, "index_version", index_version(conn))
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE paper_index, paper_pairs")
    return done


def index_is_current(conn: Connection) -> bool:
    """Whether the index was made by this code's way of cutting text; on PostgreSQL, also
    whether its newest paper has its word pairs: a process of the release before them, left
    running past an upgrade, writes `paper_index` alone (the upgrade notes say to stop them all;
    a start after one did rebuilds)."""
    if meta.get(conn, "index_version") != index_version(conn):
        return False
    if conn.dialect.name != "postgresql":
        return True
    newest = "SELECT (SELECT max(paper_id) FROM paper_index), (SELECT max(paper_id) FROM paper_pairs)"
    indexed, paired = conn.execute(text(newest)).one()
    return bool(indexed == paired)


def rebuild_index(conn: Connection, on_batch: Callable[[int], None] | None = None) -> int:
    """Drop the index and build it again from the stored papers."""
    drop_index(conn)
    create_index(conn, filled_first=True)
    return fill_index(conn, on_batch)
