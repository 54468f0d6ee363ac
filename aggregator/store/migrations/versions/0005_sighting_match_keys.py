"""sightings.match_keys: what a title merge reads of an entry (identity keys, family names)
without decoding it, filled from `data` for the rows already stored; the title index also
carries the paper, so that the first few papers bearing a title are read from it alone.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.store.codec import decode_sighting, encode_match_keys
from aggregator.text import author_keys

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 5_000  # rows read, then written, at a time: memory stays flat on a large store

_sightings = sa.table(
    "sightings",
    sa.column("id", sa.Integer),
    sa.column("data", sa.Text),
    sa.column("match_keys", sa.Text),
)


def upgrade() -> None:
    # Step by step, each skipped when already done: a store stamped back to an older revision
    # (as the upgrade tests do) runs this again over its own work.
    conn = op.get_bind()
    found = sa.inspect(conn)
    if "match_keys" not in {c["name"] for c in found.get_columns("sightings")}:
        op.add_column("sightings", sa.Column("match_keys", sa.Text(), nullable=True))
    indexes = {i["name"] for i in found.get_indexes("sightings")}
    if "ix_sightings_title_key" in indexes:
        op.drop_index("ix_sightings_title_key", table_name="sightings")
    if "ix_sightings_title_paper" not in indexes:
        op.create_index("ix_sightings_title_paper", "sightings", ["title_key", "paper_id"])
    fill(conn)


def fill(conn: sa.Connection) -> None:
    """The match_keys of every row without them, from its `data` (decoded as the ingest reads
    it), BATCH rows at a time, in id order."""
    read = (
        sa.select(_sightings.c.id, _sightings.c.data)
        .where(_sightings.c.match_keys.is_(None))
        .order_by(_sightings.c.id)
        .limit(BATCH)
    )
    write = (
        sa.update(_sightings)
        .where(_sightings.c.id == sa.bindparam("b_id"))
        .values(match_keys=sa.bindparam("b_match_keys"))
    )
    last = None
    while True:
        rows = conn.execute(read if last is None else read.where(_sightings.c.id > last)).all()
        if not rows:
            return
        values = []
        for r in rows:
            s = decode_sighting(r.data)
            values.append({"b_id": r.id, "b_match_keys": encode_match_keys(s.keys, author_keys(s.authors))})
        conn.execute(write, values)
        last = rows[-1].id


def downgrade() -> None:
    op.drop_index("ix_sightings_title_paper", table_name="sightings")
    op.create_index("ix_sightings_title_key", "sightings", ["title_key"])
    op.drop_column("sightings", "match_keys")
