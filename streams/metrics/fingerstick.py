"""Fingerstick (capillary) glucose: fasting category and the pre-/post-meal targets (ADA).

Fasting categories split at 100 and 126 mg/dL: normal < 100 <= prediabetes (impaired fasting glucose,
printed "100-125") < 126 <= diabetes range. A fractional value between printed ranges (125.5) belongs to
the lower one. The ADA's diagnostic cut points are for laboratory plasma glucose; on a meter reading the
category is a screening label for a display, not a diagnosis.
Targets for people with diabetes (many non-pregnant adults): pre-meal 80-130 mg/dL, peak after a meal
(1-2 h after its start) < 180 mg/dL.
Source: ADA Standards of Care 2025, section 2, doi 10.2337/dc25-S002 (targets: section 6, doi 10.2337/dc25-S006).
"""

from __future__ import annotations

from enum import StrEnum

from streams.metrics.inputs import require_positive

FASTING_PREDIABETES_MIN_MG_DL = 100.0
FASTING_DIABETES_MIN_MG_DL = 126.0
PREPRANDIAL_TARGET_LOW_MG_DL = 80.0
PREPRANDIAL_TARGET_HIGH_MG_DL = 130.0
POSTPRANDIAL_TARGET_BELOW_MG_DL = 180.0


class FastingCategory(StrEnum):
    """ADA fasting plasma glucose category."""

    NORMAL = "normal"
    PREDIABETES = "prediabetes"
    DIABETES = "diabetes_range"


def classify_fasting_glucose(
    glucose_mg_dl: float,
    *,
    prediabetes_min_mg_dl: float = FASTING_PREDIABETES_MIN_MG_DL,
    diabetes_min_mg_dl: float = FASTING_DIABETES_MIN_MG_DL,
) -> FastingCategory:
    """Fasting glucose (mg/dL) category: < 100 normal; 100 <= G < 126 prediabetes; >= 126 diabetes range.

    Raises ValueError naming glucose_mg_dl when it is not a finite number > 0.
    Source: ADA Standards of Care 2025, section 2, doi 10.2337/dc25-S002.
    """
    value = require_positive(glucose_mg_dl, "glucose_mg_dl")
    if value >= diabetes_min_mg_dl:
        return FastingCategory.DIABETES
    if value >= prediabetes_min_mg_dl:
        return FastingCategory.PREDIABETES
    return FastingCategory.NORMAL


def preprandial_in_target(
    glucose_mg_dl: float,
    *,
    low_mg_dl: float = PREPRANDIAL_TARGET_LOW_MG_DL,
    high_mg_dl: float = PREPRANDIAL_TARGET_HIGH_MG_DL,
) -> bool:
    """True when a pre-meal reading is within 80-130 mg/dL, both ends inclusive.

    Raises ValueError naming glucose_mg_dl when it is not a finite number > 0.
    Source: ADA Standards of Care 2025, section 6 (glycemic goals), doi 10.2337/dc25-S006.
    """
    value = require_positive(glucose_mg_dl, "glucose_mg_dl")
    return low_mg_dl <= value <= high_mg_dl


def postprandial_in_target(
    glucose_mg_dl: float,
    *,
    below_mg_dl: float = POSTPRANDIAL_TARGET_BELOW_MG_DL,
) -> bool:
    """True when an after-meal (peak, 1-2 h) reading is strictly below 180 mg/dL; 180 itself misses it.

    Raises ValueError naming glucose_mg_dl when it is not a finite number > 0.
    Source: ADA Standards of Care 2025, section 6 (glycemic goals), doi 10.2337/dc25-S006.
    """
    value = require_positive(glucose_mg_dl, "glucose_mg_dl")
    return value < below_mg_dl
