"""A small, realistic data set for the dashboards' SQL: twelve people over the last two weeks.

The group sizes are chosen around the k-anonymity threshold (5): some groups have 5 or more people and must be
shown, others have 1 or 2 and must be left out, so a query that forgets its threshold shows up in the tests.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert

from storage.tables import (
    blood_pressure_readings,
    daily_totals,
    glucose_metrics,
    glucose_readings,
    hba1c_results,
    risk_tiers,
    user_metrics_current,
)

PEOPLE = [f"monitoring-person-{n:02d}" for n in range(1, 13)]
#: The person the clinician view is opened for.
PATIENT = PEOPLE[0]

#: Newest tier per person: low 6, moderate 5, high 1 (left out: a group of one).
NEWEST_TIERS = ["low"] * 6 + ["moderate"] * 5 + ["high"]
#: 14-day time in range (%): 60-70 band 5 people, 70-80 band 5, 90-100 band 2 (left out).
TIR_14D_PCT = [62.0, 64.5, 66.0, 68.0, 69.5, 71.0, 73.0, 75.5, 78.0, 79.9, 93.0, 96.0]
#: 7-day mean blood pressure (systolic, diastolic): normal 6, stage 2 hypertension 5, stage 1 one (left out).
BP_7D_MMHG = [(112.0, 72.0)] * 6 + [(148.0, 94.0)] * 5 + [(134.0, 82.0)]

#: What the population queries must return for this data set.
EXPECTED_TIERS = [("low", 6), ("moderate", 5)]
EXPECTED_TIR_BANDS = [("60–70 %", 5), ("70–80 %", 5)]
EXPECTED_BP_CATEGORIES = [("Normal", 6), ("Stage 2 hypertension", 5)]


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime


def time_range(now: datetime) -> TimeRange:
    """The dashboards' range in the tests: the last 30 days."""
    return TimeRange(now - timedelta(days=30), now)


def _envelope(person: str, at: datetime) -> dict[str, Any]:
    return {"user_id": person, "occurred_at": at, "event_id": uuid.uuid4(), "device_id": f"{person}-device",
            "source": "device", "received_at": at + timedelta(seconds=5)}


def insert_population(connection: Connection, now: datetime) -> None:
    """Write the data set, ending at `now` (an aware datetime)."""
    today = now.astimezone(UTC).date()
    tiers, metrics, glucose_windows, days = [], [], [], []
    for i, person in enumerate(PEOPLE):
        # An older assessment first: the queries must use each person's newest one.
        tiers.append({"user_id": person, "as_of": now - timedelta(days=10), "tier": "urgent",
                      "reasons": [{"code": "old", "tier": "urgent", "text": "an older assessment", "source": "test"}],
                      "event_id": uuid.uuid4()})
        tiers.append({"user_id": person, "as_of": now - timedelta(hours=2 + i), "tier": NEWEST_TIERS[i],
                      "reasons": [{"code": "tir_low", "tier": NEWEST_TIERS[i], "text": "time in range below 70 %",
                                   "source": "Battelino 2019"}],
                      "event_id": uuid.uuid4()})
        systolic, diastolic = BP_7D_MMHG[i]
        for metric, value in (("time_in_range_14d_pct", TIR_14D_PCT[i]), ("mean_systolic_7d_mmhg", systolic),
                              ("mean_diastolic_7d_mmhg", diastolic), ("weekly_exercise_minutes", 60.0 + 15 * i)):
            metrics.append({"user_id": person, "metric": metric, "value": value, "sufficient": True,
                            "as_of": now - timedelta(hours=1)})
        for day_offset in range(14):
            day = today - timedelta(days=day_offset)
            days.append({"user_id": person, "day": day, "time_zone": "Europe/Berlin", "energy_kcal": 1900.0,
                         "carbs_g": 180.0 + i, "protein_g": 80.0, "fat_g": 70.0, "meals": 3,
                         "exercise_min": 10.0 + 4 * i, "exercise_kcal": 50.0 + 20 * i, "steps": 4000 + 500 * i,
                         "glucose_readings": 288, "bp_readings": 2, "updated_at": now})
            as_of_hour = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12)
            if as_of_hour <= now:
                glucose_windows.append(_glucose_window(person, "24h", as_of_hour, TIR_14D_PCT[i] - 3 + day_offset % 5))
        glucose_windows.append(_glucose_window(person, "14d", now.replace(minute=0, second=0, microsecond=0),
                                               TIR_14D_PCT[i]))
    # A person without enough CGM data: not counted in the time-in-range figures.
    metrics.append({"user_id": "monitoring-person-sparse", "metric": "time_in_range_14d_pct", "value": 95.0,
                    "sufficient": False, "as_of": now - timedelta(hours=1)})
    connection.execute(insert(risk_tiers), tiers)
    connection.execute(insert(user_metrics_current), metrics)
    connection.execute(insert(glucose_metrics), glucose_windows)
    connection.execute(insert(daily_totals), days)
    _insert_patient_readings(connection, now)


def _glucose_window(person: str, window: str, as_of_hour: datetime, tir_pct: float) -> dict[str, Any]:
    days = 1 if window == "24h" else 14
    return {"user_id": person, "window": window, "as_of_hour": as_of_hour, "as_of": as_of_hour,
            "window_start": as_of_hour - timedelta(days=days), "readings": 288 * days, "mean_mg_dl": 148.0,
            "sd_mg_dl": 42.0, "cv_pct": 28.4, "gmi_pct": 6.85, "tir_pct": tir_pct, "tbr70_pct": 2.5,
            "tbr54_pct": 0.4, "tar180_pct": 100 - tir_pct - 2.5, "tar250_pct": 4.0, "lbgi": 1.1, "hbgi": 5.2,
            "gri": 32.0, "gri_zone": "B", "readings_present_pct": 96.0, "sufficient": True}


def _insert_patient_readings(connection: Connection, now: datetime) -> None:
    start = now - timedelta(days=2)
    # CGM every 15 minutes for two days: a daily curve between about 90 and 210 mg/dL.
    glucose = [{**_envelope(PATIENT, start + timedelta(minutes=15 * n)),
                "glucose_mg_dl": round(150 + 60 * math.sin(n / 96 * 2 * math.pi), 1), "kind": "cgm",
                "meal_context": "unknown", "trend": "Flat"} for n in range(192)]
    pressure = [{**_envelope(PATIENT, start + timedelta(hours=12 * n)), "systolic_mmhg": 128 + n,
                 "diastolic_mmhg": 82, "pulse_bpm": 70, "arm": "left", "position": "sitting"} for n in range(4)]
    hba1c = [{**_envelope(PATIENT, now - timedelta(days=3)), "hba1c_pct": 7.1, "source": "app"}]
    connection.execute(insert(glucose_readings), glucose)
    connection.execute(insert(blood_pressure_readings), pressure)
    connection.execute(insert(hba1c_results), hba1c)
