"""Event factories with sensible defaults for the stream tests."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid5

from schemas.events import (
    BloodPressureReading,
    ExerciseSession,
    GlucoseKind,
    GlucoseReading,
    HbA1cResult,
    MealLogged,
    PhotoRef,
    Source,
)
from schemas.meal_analysis import FoodGuess, MealAnalyzed, ModelVersion
from schemas.units import GlucoseUnit, HbA1cUnit

NAMESPACE = UUID("3a3b7f2e-0f51-4a4e-93c1-4b8a2f1d6e70")
T0 = datetime(2024, 6, 1, 8, 0, tzinfo=UTC)


def event_id(*parts: object) -> UUID:
    return uuid5(NAMESPACE, "|".join(str(p) for p in parts))


def cgm(user_id: str, at: datetime, mg_dl: float, *, received_at: datetime | None = None,
        kind: GlucoseKind = GlucoseKind.CGM) -> GlucoseReading:
    return GlucoseReading(event_id=event_id("g", user_id, at.isoformat(), kind), user_id=user_id, device_id="cgm",
                          source=Source.DEVICE, occurred_at=at, received_at=received_at or at, unit=GlucoseUnit.MG_DL,
                          value=mg_dl, kind=kind)


def cgm_trace(user_id: str, start: datetime, values: list[float], *, step_min: int = 5,
              received_at: datetime | None = None) -> list[GlucoseReading]:
    return [cgm(user_id, start + timedelta(minutes=step_min * i), v,
                received_at=received_at or start + timedelta(minutes=step_min * i)) for i, v in enumerate(values)]


def bp(user_id: str, at: datetime, systolic: int, diastolic: int, *,
       received_at: datetime | None = None) -> BloodPressureReading:
    return BloodPressureReading(event_id=event_id("bp", user_id, at.isoformat()), user_id=user_id, device_id="cuff",
                                source=Source.DEVICE, occurred_at=at, received_at=received_at or at,
                                systolic_mmhg=systolic, diastolic_mmhg=diastolic)


def hba1c(user_id: str, at: datetime, pct: float) -> HbA1cResult:
    return HbA1cResult(event_id=event_id("a1c", user_id, at.isoformat()), user_id=user_id, device_id="lab",
                       source=Source.API, occurred_at=at, received_at=at, unit=HbA1cUnit.PERCENT, value=pct)


def exercise(user_id: str, at: datetime, minutes: float, *, kcal: float | None = None,
             steps: int | None = None) -> ExerciseSession:
    return ExerciseSession(event_id=event_id("ex", user_id, at.isoformat()), user_id=user_id, device_id="watch",
                           source=Source.DEVICE, occurred_at=at, received_at=at, activity="walking",
                           duration_min=minutes, energy_kcal=kcal, steps=steps)


def meal(user_id: str, at: datetime, *, kcal: float | None = 500.0, carbs: float | None = 60.0,
         protein: float | None = 20.0, fat: float | None = 15.0) -> MealLogged:
    return MealLogged(event_id=event_id("meal", user_id, at.isoformat()), user_id=user_id, device_id="app",
                      source=Source.APP, occurred_at=at, received_at=at, meal_slot="lunch", energy_kcal=kcal,
                      carbs_g=carbs, protein_g=protein, fat_g=fat)


def photo_meal(user_id: str, at: datetime, *, kcal: float | None = None, carbs: float | None = None,
               protein: float | None = None, fat: float | None = None) -> MealLogged:
    """A meal with a photo; by default the user entered no nutrients (the photo's estimate fills them in)."""
    sha256 = hashlib.sha256(f"photo|{user_id}|{at.isoformat()}".encode()).hexdigest()
    return MealLogged(event_id=event_id("photo-meal", user_id, at.isoformat()), user_id=user_id, device_id="app",
                      source=Source.APP, occurred_at=at, received_at=at, meal_slot="dinner", energy_kcal=kcal,
                      carbs_g=carbs, protein_g=protein, fat_g=fat,
                      photo=PhotoRef(object_key=f"meals/{user_id}/{sha256}.jpg", sha256=sha256,
                                     content_type="image/jpeg", size_bytes=120_000))


def analysis(meal: MealLogged, *, is_food: bool = True, kcal: float = 700.0, carbs: float = 80.0,
             protein: float = 30.0, fat: float = 25.0, version: str = "1",
             analysed_after: timedelta = timedelta(seconds=5)) -> MealAnalyzed:
    """The inference consumer's analysis of `meal`'s photo by model version `version`, made `analysed_after` the
    meal was logged (received_at orders re-analyses). A non-food analysis carries no estimate."""
    assert meal.photo is not None
    food = dict(estimate_label="pizza", portion_g=300.0, energy_kcal=kcal, carbs_g=carbs, protein_g=protein,
                fat_g=fat, top_foods=[FoodGuess(label="pizza", confidence=0.9)]) if is_food else {}
    return MealAnalyzed(user_id=meal.user_id, device_id=meal.device_id, source=meal.source,
                        occurred_at=meal.occurred_at, received_at=meal.received_at + analysed_after,
                        meal_event_id=meal.event_id, photo_sha256=meal.photo.sha256, is_food=is_food,
                        food_score=0.95 if is_food else 0.1, gate_food_prob=0.95 if is_food else 0.1,
                        imagenet_food_score=0.8 if is_food else 0.05, scene="food" if is_food else "other",
                        models=[ModelVersion(name="meal_analyzer", version=version)], inference_ms=40.0,
                        latency_ms=120.0, **food)
