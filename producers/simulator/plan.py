"""A person's day, planned in their local time: meals, exercise, finger-sticks, cuff readings, a night-time low.

Every random draw for a day happens here, in a fixed order, whatever part of the day the simulation window
covers: so a given seed always gives the same day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from producers.simulator.profiles import UserProfile
from schemas.events import Activity, MealContext, MealSlot

#: Activity → (share of sessions, MET, mean heart rate range in bpm, steps per minute range or None).
ACTIVITIES: dict[Activity, tuple[float, float, tuple[int, int], tuple[int, int] | None]] = {
    Activity.WALKING: (0.4, 3.5, (95, 115), (95, 115)),
    Activity.RUNNING: (0.1, 9.0, (140, 165), (150, 170)),
    Activity.CYCLING: (0.2, 7.0, (120, 145), None),
    Activity.SWIMMING: (0.05, 7.0, (115, 140), None),
    Activity.STRENGTH: (0.15, 5.0, (100, 125), None),
    Activity.YOGA: (0.1, 2.5, (80, 100), None),
}
SNACK_HOURS = (10.5, 15.5, 21.5)


def local_time(day: date, hours: float, zone: ZoneInfo) -> datetime:
    """`hours` after local midnight of `day`, in UTC. A wall time inside a DST gap moves forward by the gap."""
    wall = datetime.combine(day, time.min) + timedelta(hours=hours)
    return wall.replace(tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class PlannedMeal:
    slot: MealSlot
    at: datetime
    carbs_g: float


@dataclass(frozen=True)
class PlannedExercise:
    activity: Activity
    at: datetime
    duration_min: float

    @property
    def met(self) -> float:
        return ACTIVITIES[self.activity][1]


@dataclass(frozen=True)
class NightLow:
    centre: datetime
    nadir_mg_dl: float
    width_min: float


@dataclass(frozen=True)
class DayPlan:
    meals: list[PlannedMeal]
    exercise: PlannedExercise | None
    night_low: NightLow | None
    fingersticks: list[tuple[datetime, MealContext]]
    blood_pressure: list[tuple[datetime, bool]]  # (when, is it the morning reading)


def plan_day(day: date, profile: UserProfile, zone: ZoneInfo, rng: np.random.Generator) -> DayPlan:
    """Draw one local day of `profile`'s life."""
    meals = _meals(day, zone, rng)
    exercise = _exercise(day, profile, zone, rng)
    night_low = None
    if rng.random() < profile.night_low_probability:
        night_low = NightLow(local_time(day, rng.uniform(1.5, 4.5), zone), rng.uniform(45, 62), rng.uniform(40, 70))
    return DayPlan(meals, exercise, night_low, _fingersticks(day, meals, profile, zone, rng),
                   _blood_pressure(day, zone, rng))


def _meals(day: date, zone: ZoneInfo, rng: np.random.Generator) -> list[PlannedMeal]:
    # Mean carbs 45 + 60 + 70 + one 20 g snack = profiles.EXPECTED_DAILY_CARBS_G.
    hours_carbs = [
        (MealSlot.BREAKFAST, rng.normal(7.5, 0.5), rng.uniform(30, 60)),
        (MealSlot.LUNCH, rng.normal(12.75, 0.5), rng.uniform(40, 80)),
        (MealSlot.DINNER, rng.normal(19.0, 0.6), rng.uniform(50, 90)),
    ]
    snacks = rng.choice(SNACK_HOURS, size=int(rng.integers(0, 3)), replace=False)
    hours_carbs += [(MealSlot.SNACK, float(hour) + rng.normal(0, 0.3), rng.uniform(10, 30)) for hour in snacks]
    meals = [PlannedMeal(slot, local_time(day, hour, zone), float(carbs)) for slot, hour, carbs in hours_carbs]
    return sorted(meals, key=lambda meal: meal.at)


def _exercise(day: date, profile: UserProfile, zone: ZoneInfo, rng: np.random.Generator) -> PlannedExercise | None:
    if rng.random() >= profile.exercise_probability:
        return None
    activities = list(ACTIVITIES)
    activity = activities[int(rng.choice(len(activities), p=[ACTIVITIES[a][0] for a in activities]))]
    hour = rng.uniform(6.5, 8.0) if rng.random() < 0.4 else rng.uniform(17.0, 19.5)
    return PlannedExercise(activity, local_time(day, hour, zone), float(round(rng.uniform(20, 75))))


def _fingersticks(day: date, meals: list[PlannedMeal], profile: UserProfile, zone: ZoneInfo,
                  rng: np.random.Generator) -> list[tuple[datetime, MealContext]]:
    by_slot = {meal.slot: meal.at for meal in meals}
    breakfast, lunch, dinner = by_slot[MealSlot.BREAKFAST], by_slot[MealSlot.LUNCH], by_slot[MealSlot.DINNER]
    minutes = timedelta(minutes=1)
    candidates = [
        (breakfast - rng.uniform(10, 30) * minutes, MealContext.FASTING),
        (lunch - rng.uniform(5, 15) * minutes, MealContext.BEFORE_MEAL),
        (lunch + rng.uniform(100, 130) * minutes, MealContext.AFTER_MEAL),
        (dinner - rng.uniform(5, 15) * minutes, MealContext.BEFORE_MEAL),
        (dinner + rng.uniform(100, 130) * minutes, MealContext.AFTER_MEAL),
        (local_time(day, rng.uniform(22.25, 23.5), zone), MealContext.BEDTIME),
    ]
    low, high = profile.fingersticks_per_day
    chosen = rng.choice(len(candidates), size=int(rng.integers(low, high + 1)), replace=False)
    return sorted(candidates[int(i)] for i in chosen)


def _blood_pressure(day: date, zone: ZoneInfo, rng: np.random.Generator) -> list[tuple[datetime, bool]]:
    readings = [(local_time(day, rng.uniform(6.5, 8.5), zone), True)]
    if rng.random() < 0.5:
        readings.append((local_time(day, rng.uniform(19.5, 22.0), zone), False))
    return readings
