"""user_feed: each user's live events (alerts, risk-tier changes, meal analyses) for the API's event stream

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-23

A plain table, not a hypertable: the stream's cursor is the bigserial id (SSE `id:`), and a replayed event must
hit the UNIQUE source_event_id, which TimescaleDB would only allow together with the time column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "user_feed",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),  # bigserial
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", JSONB, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("source_event_id", sa.Uuid, nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.UniqueConstraint("source_event_id", name="user_feed_source_event_id_key"),
    )
    # The stream reads "this user's rows after id N", in id order.
    op.create_index("ix_user_feed_user_id_id", "user_feed", ["user_id", "id"])
    # Retention deletes by age.
    op.create_index("ix_user_feed_created_at", "user_feed", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_user_feed_created_at", table_name="user_feed")
    op.drop_index("ix_user_feed_user_id_id", table_name="user_feed")
    op.drop_table("user_feed")
