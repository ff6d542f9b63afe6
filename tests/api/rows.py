"""Rows written straight into the tables, standing in for the stream worker in API read tests.

The worker (streams/) writes these tables in production; here each test writes exactly the rows it reads back,
for its own (freshly signed-up) users, so expected answers are known without running the pipeline.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Table

from schemas.derived import BpGuideline, UserProfile
from storage.profiles import upsert_profiles
from storage.tables import (
    blood_pressure_readings,
    daily_totals,
    exercise_sessions,
    glucose_metrics,
    glucose_readings,
    hba1c_results,
    meals,
    risk_tiers,
    user_metrics_current,
)


def _envelope(user_id: str, occurred_at: datetime) -> dict[str, Any]:
    return {"user_id": user_id, "occurred_at": occurred_at, "event_id": uuid.uuid4(), "device_id": "test-device",
            "source": "app", "received_at": occurred_at + timedelta(seconds=5)}


def insert(engine: Engine, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        with engine.begin() as connection:
            connection.execute(table.insert(), list(rows))


@dataclass
class Writer:
    """Row writers for one user; each returns the rows it wrote."""

    engine: Engine
    user_id: str

    def glucose(self, readings: Sequence[tuple[datetime, float]], kind: str = "cgm",
                meal_context: str = "unknown", trend: str | None = None) -> list[dict[str, Any]]:
        rows = [{**_envelope(self.user_id, at), "glucose_mg_dl": value, "kind": kind, "meal_context": meal_context,
                 "trend": trend} for at, value in readings]
        insert(self.engine, glucose_readings, rows)
        return rows

    def blood_pressure(self, readings: Sequence[tuple[datetime, int, int]],
                       pulse_bpm: int | None = 70) -> list[dict[str, Any]]:
        rows = [{**_envelope(self.user_id, at), "systolic_mmhg": s, "diastolic_mmhg": d, "pulse_bpm": pulse_bpm,
                 "arm": "left", "position": "sitting"} for at, s, d in readings]
        insert(self.engine, blood_pressure_readings, rows)
        return rows

    def hba1c(self, results: Sequence[tuple[datetime, float]]) -> list[dict[str, Any]]:
        rows = [{**_envelope(self.user_id, at), "hba1c_pct": pct} for at, pct in results]
        insert(self.engine, hba1c_results, rows)
        return rows

    def exercise(self, sessions: Sequence[tuple[datetime, float]]) -> list[dict[str, Any]]:
        rows = [{**_envelope(self.user_id, at), "activity": "walking", "duration_min": minutes, "energy_kcal": 100.0,
                 "steps": 3000, "mean_heart_rate_bpm": 100} for at, minutes in sessions]
        insert(self.engine, exercise_sessions, rows)
        return rows

    def meals(self, logged: Sequence[tuple[datetime, float]]) -> list[dict[str, Any]]:
        rows = [{**_envelope(self.user_id, at), "meal_slot": "lunch", "energy_kcal": 600.0, "carbs_g": carbs,
                 "protein_g": 25.0, "fat_g": 20.0, "photo_object_key": "meals/secret-key.jpg",
                 "photo_sha256": "ab" * 32, "photo_content_type": "image/jpeg", "photo_size_bytes": 1234}
                for at, carbs in logged]
        insert(self.engine, meals, rows)
        return rows

    def risk_tier(self, as_of: datetime, tier: str, reasons: list[dict[str, str]]) -> None:
        insert(self.engine, risk_tiers, [{"user_id": self.user_id, "as_of": as_of, "tier": tier, "reasons": reasons,
                                          "event_id": uuid.uuid4()}])

    def glucose_metrics(self, window: str, as_of: datetime, **values: Any) -> dict[str, Any]:
        row = {"user_id": self.user_id, "window": window, "as_of_hour": as_of.replace(minute=0, second=0,
                                                                                       microsecond=0),
               "as_of": as_of, "window_start": as_of - timedelta(days=14 if window == "14d" else 1),
               "readings": 3800, "mean_mg_dl": 150.0, "sd_mg_dl": 40.0, "cv_pct": 26.7, "gmi_pct": 6.9,
               "tir_pct": 72.0, "tbr70_pct": 2.0, "tbr54_pct": 0.5, "tar180_pct": 20.0, "tar250_pct": 5.5,
               "lbgi": 1.1, "hbgi": 5.2, "gri": 30.1, "gri_zone": "B", "readings_present_pct": 94.0,
               "sufficient": True, **values}
        insert(self.engine, glucose_metrics, [row])
        return row

    def daily_totals(self, day: date, time_zone: str, **values: Any) -> dict[str, Any]:
        row = {"user_id": self.user_id, "day": day, "time_zone": time_zone, "energy_kcal": 1800.0, "carbs_g": 200.0,
               "protein_g": 80.0, "fat_g": 60.0, "meals": 3, "exercise_min": 30.0, "exercise_kcal": 150.0,
               "steps": 8000, "glucose_readings": 0, "bp_readings": 0, "updated_at": datetime.now(UTC), **values}
        insert(self.engine, daily_totals, [row])
        return row

    def metric(self, metric: str, value: float, sufficient: bool = True) -> None:
        insert(self.engine, user_metrics_current, [{"user_id": self.user_id, "metric": metric, "value": value,
                                                    "sufficient": sufficient, "as_of": datetime.now(UTC)}])

    def profile(self, time_zone: str, bp_guideline: str | None = None,
                updated_at: datetime | None = None) -> UserProfile:
        """The profile as the worker stores it once applied (through the worker's own upsert)."""
        profile = UserProfile(user_id=self.user_id, time_zone=time_zone,
                              bp_guideline=BpGuideline(bp_guideline) if bp_guideline is not None else None,
                              updated_at=updated_at or datetime.now(UTC))
        with self.engine.begin() as connection:
            upsert_profiles(connection, [profile])
        return profile
