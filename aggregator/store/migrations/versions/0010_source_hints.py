"""What a feed last said about when to fetch it again (`sources.hints`: RSS ttl, skipHours,
skipDays as JSON), kept for the 304s that follow, which carry no body.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "hints" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("sources")}:
        op.add_column("sources", sa.Column("hints", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("sources", "hints")
