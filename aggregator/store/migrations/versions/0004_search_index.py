"""The full-text index under the query language (store/search.py), filled from stored papers;
the count of papers kept in store_meta.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import func, select

from aggregator.store.indexing import fill_index
from aggregator.store.meta import put
from aggregator.store.schema import papers
from aggregator.store.search import create_index, drop_index

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    create_index(conn, filled_first=True)
    fill_index(conn)
    put(conn, "papers", int(conn.execute(select(func.count()).select_from(papers)).scalar_one()))


def downgrade() -> None:
    drop_index(op.get_bind())
