"""derived: glucose metric snapshots, risk-tier history, daily totals, current rankable metrics

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from storage.hypertables import create_hypertable

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "glucose_metrics",
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("window", sa.String(8), nullable=False),
        sa.Column("as_of_hour", TS, nullable=False),
        sa.Column("as_of", TS, nullable=False),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("readings", sa.Integer, nullable=False),
        *[sa.Column(name, sa.Float) for name in (
            "mean_mg_dl", "sd_mg_dl", "cv_pct", "gmi_pct", "tir_pct", "tbr70_pct", "tbr54_pct", "tar180_pct",
            "tar250_pct", "lbgi", "hbgi", "gri")],
        sa.Column("gri_zone", sa.String(1)),
        sa.Column("readings_present_pct", sa.Float),
        sa.Column("sufficient", sa.Boolean, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "window", "as_of_hour", name="glucose_metrics_pkey"),
    )
    create_hypertable("glucose_metrics", "as_of_hour", chunk_interval="30 days")
    op.create_table(
        "risk_tiers",
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("as_of", TS, nullable=False),
        sa.Column("tier", sa.String(8), nullable=False),
        sa.Column("reasons", JSONB, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "as_of", name="risk_tiers_pkey"),
    )
    create_hypertable("risk_tiers", "as_of", chunk_interval="30 days")
    op.create_table(
        "daily_totals",
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("time_zone", sa.Text, nullable=False),
        *[sa.Column(name, sa.Float, nullable=False) for name in ("energy_kcal", "carbs_g", "protein_g", "fat_g")],
        sa.Column("meals", sa.Integer, nullable=False),
        sa.Column("exercise_min", sa.Float, nullable=False),
        sa.Column("exercise_kcal", sa.Float, nullable=False),
        sa.Column("steps", sa.Integer, nullable=False),
        sa.Column("glucose_readings", sa.Integer, nullable=False),
        sa.Column("bp_readings", sa.Integer, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "day", name="daily_totals_pkey"),
    )
    op.create_table(
        "user_metrics_current",
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("metric", sa.String(40), nullable=False),
        sa.Column("value", sa.Float, nullable=False),
        sa.Column("sufficient", sa.Boolean, nullable=False),
        sa.Column("as_of", TS, nullable=False),
        sa.PrimaryKeyConstraint("user_id", "metric", name="user_metrics_current_pkey"),
    )
    # Rankings read one metric's sufficient values in order.
    op.create_index("user_metrics_current_rank_idx", "user_metrics_current", ["metric", "sufficient", "value"])


def downgrade() -> None:
    op.drop_index("user_metrics_current_rank_idx", table_name="user_metrics_current")
    for table in ("user_metrics_current", "daily_totals", "risk_tiers", "glucose_metrics"):
        op.drop_table(table)
