"""The full-text index under the query language (store/search.py), filled from stored papers;
the count of papers kept in store_meta.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op
from sqlalchemy import func, select

from aggregator.store.meta import put
from aggregator.store.schema import papers
from aggregator.store.search import create_index, drop_index, write_index
from aggregator.store.tagging import sources_of
from aggregator.store.writer import paper_document
from aggregator.topics.index_query import indexed_paper

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BATCH = 2000
_COLUMNS = (
    papers.c.id,
    papers.c.title,
    papers.c.abstract,
    papers.c.authors,
    papers.c.categories,
    papers.c.arxiv_id,
    papers.c.version,
    papers.c.doi,
    papers.c.announce_types,
)


def upgrade() -> None:
    conn = op.get_bind()
    create_index(conn)
    last = 0
    while True:  # in id order, a batch at a time: a million papers never sit in memory at once
        rows = conn.execute(
            select(*_COLUMNS).where(papers.c.id > last).order_by(papers.c.id).limit(BATCH)
        ).all()
        if not rows:
            break
        seen = sources_of(conn, [r.id for r in rows])
        write_index(
            conn, [(r.id, indexed_paper(paper_document(r, seen.get(r.id, [])))) for r in rows], replace=False
        )
        last = rows[-1].id
    put(conn, "papers", int(conn.execute(select(func.count()).select_from(papers)).scalar_one()))
    if conn.dialect.name == "postgresql":
        op.execute("ANALYZE paper_index")


def downgrade() -> None:
    drop_index(op.get_bind())
