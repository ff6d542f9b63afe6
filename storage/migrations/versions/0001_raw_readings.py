"""raw readings: glucose, blood pressure, HbA1c, exercise and meal hypertables keyed by event id

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from storage.hypertables import create_hypertable

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def _envelope() -> list[sa.Column[object]]:
    return [
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("occurred_at", TS, nullable=False),
        sa.Column("event_id", sa.Uuid, nullable=False),
        sa.Column("device_id", sa.Text, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("received_at", TS, nullable=False),
    ]


RAW: dict[str, list[sa.Column[object]]] = {
    "glucose_readings": [
        sa.Column("glucose_mg_dl", sa.Float, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("meal_context", sa.String(16), nullable=False),
        sa.Column("trend", sa.String(24)),
    ],
    "blood_pressure_readings": [
        sa.Column("systolic_mmhg", sa.SmallInteger, nullable=False),
        sa.Column("diastolic_mmhg", sa.SmallInteger, nullable=False),
        sa.Column("pulse_bpm", sa.SmallInteger),
        sa.Column("arm", sa.String(8)),
        sa.Column("position", sa.String(16)),
    ],
    "hba1c_results": [
        sa.Column("hba1c_pct", sa.Float, nullable=False),
    ],
    "exercise_sessions": [
        sa.Column("activity", sa.String(16), nullable=False),
        sa.Column("duration_min", sa.Float, nullable=False),
        sa.Column("energy_kcal", sa.Float),
        sa.Column("steps", sa.Integer),
        sa.Column("mean_heart_rate_bpm", sa.SmallInteger),
    ],
    "meals": [
        sa.Column("meal_slot", sa.String(16), nullable=False),
        sa.Column("energy_kcal", sa.Float),
        sa.Column("carbs_g", sa.Float),
        sa.Column("protein_g", sa.Float),
        sa.Column("fat_g", sa.Float),
        sa.Column("photo_object_key", sa.Text),
        sa.Column("photo_sha256", sa.String(64)),
        sa.Column("photo_content_type", sa.String(16)),
        sa.Column("photo_size_bytes", sa.Integer),
    ],
}


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    for table, columns in RAW.items():
        op.create_table(
            table, *_envelope(), *columns,
            sa.PrimaryKeyConstraint("user_id", "occurred_at", "event_id", name=f"{table}_pkey"),
        )
        create_hypertable(table, "occurred_at")


def downgrade() -> None:
    for table in reversed(RAW):
        op.drop_table(table)
