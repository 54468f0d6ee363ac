"""The feed-order keys of papers found by id (a search's candidates), read without the rows:
an index of (id, published), and the view `paper_order_keys` over it. In a papers row,
`published` sits after the abstract, often on an overflow page; SQLite's planner still takes
the rowid for `id IN (...)`, so on SQLite the view names the index (INDEXED BY); PostgreSQL's
planner chooses by itself.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    if "ix_papers_id_published" not in {i["name"] for i in sa.inspect(conn).get_indexes("papers")}:
        op.create_index("ix_papers_id_published", "papers", ["id", "published"])
    hint = " INDEXED BY ix_papers_id_published" if conn.dialect.name == "sqlite" else ""
    op.execute("DROP VIEW IF EXISTS paper_order_keys")
    op.execute(f"CREATE VIEW paper_order_keys AS SELECT id, published FROM papers{hint}")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS paper_order_keys")
    op.drop_index("ix_papers_id_published", table_name="papers")
