"""Leases with owners (`sources.lease_token`) and the per-host request slots every worker shares
(`host_slots`).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.store.schema import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if "lease_token" not in {c["name"] for c in inspector.get_columns("sources")}:
        op.add_column("sources", sa.Column("lease_token", sa.String(32), nullable=True))
    if not inspector.has_table("host_slots"):
        op.create_table(
            "host_slots",
            sa.Column("host", sa.String(255), primary_key=True),
            sa.Column("next_at", UTCDateTime(), nullable=False),
        )


def downgrade() -> None:
    op.drop_table("host_slots")
    op.drop_column("sources", "lease_token")
