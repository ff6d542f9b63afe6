"""Glucose categories shown beside a reading, from the thresholds and functions in streams.metrics."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from schemas.events import MealContext
from streams.metrics import (
    FastingCategory,
    classify_fasting_glucose,
    postprandial_in_target,
    preprandial_in_target,
)
from streams.metrics.cgm import TAR_LEVEL_2_MG_DL, TBR_LEVEL_2_MG_DL, TIR_HIGH_MG_DL, TIR_LOW_MG_DL


class GlucoseRange(StrEnum):
    """Consensus glucose ranges (Battelino et al. 2019, doi 10.2337/dci19-0028), the bands of time in range."""

    VERY_LOW = "very_low"  # < 54 mg/dL (level 2 hypoglycaemia)
    LOW = "low"  # 54 to < 70
    IN_RANGE = "in_range"  # 70 to 180 inclusive
    HIGH = "high"  # > 180 to 250
    VERY_HIGH = "very_high"  # > 250


def glucose_range(glucose_mg_dl: float) -> GlucoseRange:
    if glucose_mg_dl < TBR_LEVEL_2_MG_DL:
        return GlucoseRange.VERY_LOW
    if glucose_mg_dl < TIR_LOW_MG_DL:
        return GlucoseRange.LOW
    if glucose_mg_dl <= TIR_HIGH_MG_DL:
        return GlucoseRange.IN_RANGE
    if glucose_mg_dl <= TAR_LEVEL_2_MG_DL:
        return GlucoseRange.HIGH
    return GlucoseRange.VERY_HIGH


@dataclass(frozen=True, slots=True)
class GlucoseCategories:
    range: GlucoseRange
    #: Only for a fasting reading: the ADA fasting category.
    fasting: FastingCategory | None
    #: Only for a reading before (80-130 mg/dL) or after (< 180 mg/dL) a meal: whether it met the ADA target.
    in_meal_target: bool | None


def glucose_categories(glucose_mg_dl: float, meal_context: str) -> GlucoseCategories:
    context = MealContext(meal_context)
    fasting = classify_fasting_glucose(glucose_mg_dl) if context is MealContext.FASTING else None
    in_target: bool | None = None
    if context is MealContext.BEFORE_MEAL:
        in_target = preprandial_in_target(glucose_mg_dl)
    elif context is MealContext.AFTER_MEAL:
        in_target = postprandial_in_target(glucose_mg_dl)
    return GlucoseCategories(range=glucose_range(glucose_mg_dl), fasting=fasting, in_meal_target=in_target)

