"""Drop ix_sightings_source: the unique (source, entry_id) index already serves lookups by source.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_sightings_source", table_name="sightings")


def downgrade() -> None:
    op.create_index("ix_sightings_source", "sightings", ["source"])
