"""The papers Hugging Face has upvoted, by date: a partial index of `published` over the rows
whose `upvotes` is set (a few in a hundred), so that a digest of all papers finds a period's
most upvoted without reading every paper of the period.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UPVOTED = sa.text("upvotes IS NOT NULL")


def upgrade() -> None:
    if "ix_papers_upvoted" in {i["name"] for i in sa.inspect(op.get_bind()).get_indexes("papers")}:
        return  # a store made from the current schema has it from the start
    op.create_index(
        "ix_papers_upvoted", "papers", ["published"], sqlite_where=UPVOTED, postgresql_where=UPVOTED
    )


def downgrade() -> None:
    op.drop_index("ix_papers_upvoted", table_name="papers")
