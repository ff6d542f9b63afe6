"""A fast synthetic event stream for many users (CGM every 5 minutes, blood pressure, meals, exercise), with
deterministic ids; and the daily totals it must produce, computed straight from the events."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from schemas.events import BloodPressureReading, Event, ExerciseSession, GlucoseReading, MealLogged
from tests.streams.factories import bp, cgm, exercise, meal

ZONES = ("UTC", "America/New_York", "Asia/Seoul", "Asia/Kolkata", "Europe/Berlin")


@dataclass(frozen=True)
class Truth:
    meals: int = 0
    energy_kcal: float = 0.0
    carbs_g: float = 0.0
    exercise_min: float = 0.0
    steps: int = 0
    glucose_readings: int = 0
    bp_readings: int = 0


def user_zone(index: int) -> str:
    return ZONES[index % len(ZONES)]


def user_events(index: int, start: datetime, count: int, rng: np.random.Generator) -> list[Event]:
    """`count` events of user `index`: 94 % CGM readings, the rest blood pressure, meals and exercise."""
    user = f"syn-{index:04d}"
    events: list[Event] = []
    glucose = 140.0
    step = 0
    while len(events) < count:
        at = start + timedelta(minutes=5 * step)
        glucose = float(np.clip(glucose + rng.normal(0, 6), 45, 380))
        events.append(cgm(user, at, round(glucose)))
        if step % 48 == 7:
            events.append(bp(user, at + timedelta(minutes=1), int(rng.integers(110, 170)), int(rng.integers(65, 100))))
        if step % 40 == 11:
            events.append(meal(user, at + timedelta(minutes=2), kcal=float(rng.integers(200, 900)),
                               carbs=float(rng.integers(20, 120)), protein=None, fat=10.5))
        if step % 150 == 23:
            events.append(exercise(user, at + timedelta(minutes=3), float(rng.integers(10, 60)),
                                   steps=int(rng.integers(500, 8000))))
        step += 1
    return events[:count]


def synthetic(users: int, per_user: int, start: datetime, seed: int = 1) -> list[Event]:
    rng = np.random.default_rng(seed)
    events = [e for index in range(users) for e in user_events(index, start, per_user, rng)]
    events.sort(key=lambda e: (e.occurred_at, e.user_id))  # roughly as devices would upload them
    return events


def daily_truth(events: list[Event], zones: dict[str, str]) -> dict[tuple[str, date], Truth]:
    sums: dict[tuple[str, date], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for event in events:
        day = event.occurred_at.astimezone(ZoneInfo(zones.get(event.user_id, "UTC"))).date()
        row = sums[(event.user_id, day)]
        match event:
            case MealLogged():
                row["meals"] += 1
                row["energy_kcal"] += event.energy_kcal or 0.0
                row["carbs_g"] += event.carbs_g or 0.0
            case ExerciseSession():
                row["exercise_min"] += event.duration_min
                row["steps"] += event.steps or 0
            case GlucoseReading():
                row["glucose_readings"] += 1
            case BloodPressureReading():
                row["bp_readings"] += 1
    return {key: Truth(meals=int(v["meals"]), energy_kcal=v["energy_kcal"], carbs_g=v["carbs_g"],
                       exercise_min=v["exercise_min"], steps=int(v["steps"]),
                       glucose_readings=int(v["glucose_readings"]), bp_readings=int(v["bp_readings"]))
            for key, v in sums.items()}
