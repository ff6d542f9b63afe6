"""meal_analyses: what the inference consumer saw on each meal photo, as the stream worker stored it

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23

A plain table, not a hypertable: the key must be the analysis event id alone, so that a re-delivered analysis is
a no-op whatever its timestamps (TimescaleDB allows a unique index only together with the time column); rows
are few (one per meal photo and model version) and are read by meal, through (user_id, meal_event_id), never
by time range, so chunking by time would buy nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "meal_analyses",
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("meal_event_id", sa.Uuid, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("photo_sha256", sa.String(64), nullable=False),
        sa.Column("is_food", sa.Boolean, nullable=False),
        sa.Column("food_score", sa.Float, nullable=False),
        sa.Column("scene", sa.String(16), nullable=False),
        sa.Column("top_foods", JSONB, nullable=False),
        sa.Column("estimate_label", sa.Text),
        *[sa.Column(name, sa.Float) for name in ("portion_g", "energy_kcal", "carbs_g", "protein_g", "fat_g")],
        sa.Column("models", JSONB, nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    # Daily totals look up the newest analysis of each meal.
    op.create_index("ix_meal_analyses_user_id_meal_event_id", "meal_analyses", ["user_id", "meal_event_id"])


def downgrade() -> None:
    op.drop_index("ix_meal_analyses_user_id_meal_event_id", table_name="meal_analyses")
    op.drop_table("meal_analyses")
