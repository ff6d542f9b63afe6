"""Retention: old raw readings and derived snapshots leave by whole TimescaleDB chunks, on a schedule.

drop_chunks removes every chunk whose whole time range is older than the cut-off, which is cheap (a file per
chunk, no row-by-row DELETE, no bloat) and works on the Apache-2 edition; TimescaleDB's add_retention_policy would
do the same from its own job scheduler but is not in that edition, so the stream worker runs `apply_retention`
itself (streams.worker) and `vitalstream db retention` runs it once (e.g. from cron). Rows may outlive the cut-off
by up to one chunk interval (7 days for raw readings, 30 for snapshots). Meal analyses, a plain table, follow
their meals' retention by DELETE.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, delete, text

from storage.meal_analyses import meal_analyses

#: Hypertables of raw events (time column occurred_at): kept `raw_days`.
RAW_HYPERTABLES = ("glucose_readings", "blood_pressure_readings", "hba1c_results", "exercise_sessions", "meals")
#: Hourly glucose-metric snapshots: by far the largest derived table; kept `snapshot_days`.
SNAPSHOT_HYPERTABLES = ("glucose_metrics",)
#: Risk-tier history: small, and clinically useful for as long as the readings behind it; kept `raw_days`.
HISTORY_HYPERTABLES = ("risk_tiers",)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each kind of data is kept, in days."""

    raw_days: int
    snapshot_days: int

    def __post_init__(self) -> None:
        for name in ("raw_days", "snapshot_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1 day, got {getattr(self, name)}")


def apply_retention(connection: Connection, policy: RetentionPolicy, now: datetime) -> dict[str, int]:
    """Drop what is older than the policy allows; returns, per table, the chunks dropped (hypertables) or the rows
    deleted (meal_analyses), 0 included."""
    raw_cutoff = now - timedelta(days=policy.raw_days)
    snapshot_cutoff = now - timedelta(days=policy.snapshot_days)
    removed: dict[str, int] = {}
    for table, cutoff in ([(t, raw_cutoff) for t in RAW_HYPERTABLES + HISTORY_HYPERTABLES]
                          + [(t, snapshot_cutoff) for t in SNAPSHOT_HYPERTABLES]):
        removed[table] = connection.execute(
            text("SELECT count(*) FROM drop_chunks(CAST(:table AS regclass), older_than => :cutoff)"),
            {"table": table, "cutoff": cutoff}).scalar_one()
    removed["meal_analyses"] = connection.execute(
        delete(meal_analyses).where(meal_analyses.c.occurred_at < raw_cutoff)).rowcount
    return removed
