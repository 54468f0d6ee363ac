"""Topics: paper_topics (score, matched terms, feed order), topic_state, sightings.authority.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from aggregator.store.schema import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "paper_topics",
        sa.Column("slug", sa.String(100), primary_key=True),
        sa.Column("paper_id", sa.Integer(), sa.ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("matched", sa.JSON(), nullable=False),
        sa.Column("published", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_paper_topics_paper_id", "paper_topics", ["paper_id"])
    op.create_index("ix_paper_topics_feed_order", "paper_topics", ["slug", "published", "paper_id"])
    op.create_table(
        "topic_state",
        sa.Column("slug", sa.String(100), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
    )
    with op.batch_alter_table("sightings") as batch:
        batch.add_column(sa.Column("authority", sa.Integer(), nullable=False, server_default="3"))
    # Sightings stored before this revision carry their authority inside the JSON.
    if op.get_bind().dialect.name == "postgresql":
        op.execute("UPDATE sightings SET authority = CAST(CAST(data AS json) ->> 'authority' AS INTEGER)")
    else:
        op.execute("UPDATE sightings SET authority = json_extract(data, '$.authority')")


def downgrade() -> None:
    with op.batch_alter_table("sightings") as batch:
        batch.drop_column("authority")
    op.drop_table("topic_state")
    op.drop_table("paper_topics")
