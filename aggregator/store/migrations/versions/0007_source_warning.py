"""sources.last_warning: what the last fetch read with trouble (a document that is not
well-formed, whose papers were kept but some of whose entries may be missing).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if "last_warning" not in {c["name"] for c in sa.inspect(op.get_bind()).get_columns("sources")}:
        op.add_column("sources", sa.Column("last_warning", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("sources", "last_warning")
