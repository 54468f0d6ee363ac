"""SQLite: the full-text index merges its segments 16 at a time, not 4 (search.FTS5_AUTOMERGE):
a quarter less work on every write of the index, and no batch paying for merges of the whole
index. A setting kept in the index itself; nothing is rewritten. PostgreSQL: nothing to do.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.store.search import tune_index

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite" and sa.inspect(conn).has_table("paper_index"):
        tune_index(conn)


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name == "sqlite" and sa.inspect(conn).has_table("paper_index"):
        conn.execute(sa.text("INSERT INTO paper_index (paper_index, rank) VALUES ('automerge', 4)"))
