"""Blood-pressure classification under ACC/AHA 2017 (default), ESC/ESH 2018 or KSH 2018, chosen per call.

Rules shared by the three guidelines:
- The category is the HIGHER of the systolic and the diastolic category ("and" for the lowest categories,
  "or"/"and/or" above them is exactly what taking the higher of the two gives).
- Ranges are printed in whole mmHg (e.g. 120-129); for fractional values (a 7-day mean of 129.6) the
  categories split at the printed lower bounds: 120 <= SBP < 130 is "120-129".
- A hypertensive crisis (SBP > 180 and/or DBP > 120 mmHg; ACC/AHA 2017 section 11.2) is flagged for every
  guideline, beside the category; it is not a category of its own.
- Isolated systolic hypertension (SBP >= 140 and DBP < 90) is a flag for ESC/ESH and KSH, which define it;
  it is None for ACC/AHA, which does not.
Thresholds are for office (clinic) readings, as in the guidelines' classification tables. Home readings
have lower thresholds (e.g. ESC/ESH: hypertension at home mean >= 135/85); we apply the office table to the
7-day home mean as the simple display it is, not as a diagnosis.

Three-level display (normal / borderline / danger), per guideline; danger always starts at 140/90 (or at a
crisis), the level at which all three call it hypertension needing treatment for most adults:
- ACC/AHA: normal -> normal; elevated, stage 1 -> borderline; stage 2 -> danger.
- ESC/ESH: optimal, normal -> normal; high normal -> borderline; grade 1, 2, 3 -> danger.
- KSH: normal -> normal; elevated, prehypertension -> borderline; grade 1, 2 -> danger.
Sources (one per guideline; BpGuideline repeats them):
ACC/AHA 2017, Whelton et al., Hypertension 71:e13, doi 10.1161/HYP.0000000000000065.
ESC/ESH 2018, Williams et al., Eur Heart J 39:3021, doi 10.1093/eurheartj/ehy339.
KSH 2018 guidelines part I (classification, Table 1), Clin Hypertens 25, doi 10.1186/s40885-019-0121-0;
part II (diagnosis and treatment), doi 10.1186/s40885-019-0124-x.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from streams.metrics.inputs import SECONDS_PER_DAY, Timestamp, TimestampsInput, epoch_seconds, require_positive

CRISIS_SYSTOLIC_ABOVE_MMHG = 180.0
CRISIS_DIASTOLIC_ABOVE_MMHG = 120.0
ISOLATED_SYSTOLIC_MIN_MMHG = 140.0
ISOLATED_DIASTOLIC_BELOW_MMHG = 90.0
DEFAULT_WINDOW_DAYS = 7.0


class BpGuideline(StrEnum):
    """Which classification table to apply."""

    ACC_AHA_2017 = "acc_aha_2017"  # Whelton et al. 2017, doi 10.1161/HYP.0000000000000065
    ESC_ESH_2018 = "esc_esh_2018"  # Williams et al. 2018, doi 10.1093/eurheartj/ehy339
    KSH_2018 = "ksh_2018"  # KSH 2018 guidelines part I (classification), doi 10.1186/s40885-019-0121-0


class AccAhaCategory(StrEnum):
    """ACC/AHA 2017 categories, in increasing order."""

    NORMAL = "normal"
    ELEVATED = "elevated"
    STAGE_1 = "stage_1_hypertension"
    STAGE_2 = "stage_2_hypertension"

    @property
    def label(self) -> str:
        return _LABELS[self]


class EscEshCategory(StrEnum):
    """ESC/ESH 2018 categories, in increasing order."""

    OPTIMAL = "optimal"
    NORMAL = "normal"
    HIGH_NORMAL = "high_normal"
    GRADE_1 = "grade_1_hypertension"
    GRADE_2 = "grade_2_hypertension"
    GRADE_3 = "grade_3_hypertension"

    @property
    def label(self) -> str:
        return _LABELS[self]


class KshCategory(StrEnum):
    """Korean Society of Hypertension 2018 categories, in increasing order."""

    NORMAL = "normal"
    ELEVATED = "elevated"
    PREHYPERTENSION = "prehypertension"
    GRADE_1 = "grade_1_hypertension"
    GRADE_2 = "grade_2_hypertension"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def label_ko(self) -> str:
        return _KSH_LABELS_KO[self]


BpCategory = AccAhaCategory | EscEshCategory | KshCategory


class BpDisplayLevel(StrEnum):
    """Three-level view for simple displays (mapping in the module doc)."""

    NORMAL = "normal"
    BORDERLINE = "borderline"
    DANGER = "danger"


_LABELS: dict[BpCategory, str] = {
    AccAhaCategory.NORMAL: "Normal",
    AccAhaCategory.ELEVATED: "Elevated",
    AccAhaCategory.STAGE_1: "Stage 1 hypertension",
    AccAhaCategory.STAGE_2: "Stage 2 hypertension",
    EscEshCategory.OPTIMAL: "Optimal",
    EscEshCategory.NORMAL: "Normal",
    EscEshCategory.HIGH_NORMAL: "High normal",
    EscEshCategory.GRADE_1: "Grade 1 hypertension",
    EscEshCategory.GRADE_2: "Grade 2 hypertension",
    EscEshCategory.GRADE_3: "Grade 3 hypertension",
    KshCategory.NORMAL: "Normal blood pressure",
    KshCategory.ELEVATED: "Elevated blood pressure",
    KshCategory.PREHYPERTENSION: "Prehypertension",
    KshCategory.GRADE_1: "Grade 1 hypertension",
    KshCategory.GRADE_2: "Grade 2 hypertension",
}

_KSH_LABELS_KO: dict[KshCategory, str] = {
    KshCategory.NORMAL: "정상혈압",
    KshCategory.ELEVATED: "주의혈압",
    KshCategory.PREHYPERTENSION: "고혈압 전단계",
    KshCategory.GRADE_1: "1기 고혈압",
    KshCategory.GRADE_2: "2기 고혈압",
}
ISOLATED_SYSTOLIC_LABEL = "Isolated systolic hypertension"
ISOLATED_SYSTOLIC_LABEL_KO = "수축기 단독 고혈압"


@dataclass(frozen=True, slots=True)
class _Table:
    """Categories in increasing order, and the lower bound (mmHg) at which each one after the first starts."""

    categories: tuple[BpCategory, ...]
    systolic_from_mmhg: tuple[float | None, ...]  # None: this category has no systolic range
    diastolic_from_mmhg: tuple[float | None, ...]  # None: this category has no diastolic range
    display: tuple[BpDisplayLevel, ...]
    defines_isolated_systolic: bool

    def category_of(self, value_mmhg: float, bounds: tuple[float | None, ...]) -> int:
        rank = 0
        for index, bound in enumerate(bounds):
            if bound is not None and value_mmhg >= bound:
                rank = index
        return rank


_N, _B, _D = BpDisplayLevel.NORMAL, BpDisplayLevel.BORDERLINE, BpDisplayLevel.DANGER

# ACC/AHA 2017 Table 6: normal <120 and <80; elevated 120-129 and <80; stage 1 130-139 or 80-89;
# stage 2 >=140 or >=90. "Elevated" has no diastolic range: DBP 80-89 is stage 1 whatever the SBP.
_ACC_AHA = _Table(
    categories=tuple(AccAhaCategory),
    systolic_from_mmhg=(0.0, 120.0, 130.0, 140.0),
    diastolic_from_mmhg=(0.0, None, 80.0, 90.0),
    display=(_N, _B, _B, _D),
    defines_isolated_systolic=False,
)
# ESC/ESH 2018 Table 3: optimal <120 and <80; normal 120-129 and/or 80-84; high normal 130-139 and/or 85-89;
# grade 1 140-159 and/or 90-99; grade 2 160-179 and/or 100-109; grade 3 >=180 and/or >=110.
_ESC_ESH = _Table(
    categories=tuple(EscEshCategory),
    systolic_from_mmhg=(0.0, 120.0, 130.0, 140.0, 160.0, 180.0),
    diastolic_from_mmhg=(0.0, 80.0, 85.0, 90.0, 100.0, 110.0),
    display=(_N, _N, _B, _D, _D, _D),
    defines_isolated_systolic=True,
)
# KSH 2018 (part I, Table 1): normal <120 and <80; elevated 120-129 and <80; prehypertension 130-139 or
# 80-89; grade 1 140-159 or 90-99; grade 2 >=160 or >=100. "Elevated" has no diastolic range.
_KSH = _Table(
    categories=tuple(KshCategory),
    systolic_from_mmhg=(0.0, 120.0, 130.0, 140.0, 160.0),
    diastolic_from_mmhg=(0.0, None, 80.0, 90.0, 100.0),
    display=(_N, _B, _B, _D, _D),
    defines_isolated_systolic=True,
)
_TABLES: dict[BpGuideline, _Table] = {
    BpGuideline.ACC_AHA_2017: _ACC_AHA,
    BpGuideline.ESC_ESH_2018: _ESC_ESH,
    BpGuideline.KSH_2018: _KSH,
}


@dataclass(frozen=True, slots=True)
class BpClassification:
    """Category of one reading (or of a mean) under one guideline, with the guideline-wide flags."""

    guideline: BpGuideline
    systolic_mmhg: float
    diastolic_mmhg: float
    category: BpCategory
    systolic_category: BpCategory
    diastolic_category: BpCategory
    crisis: bool
    isolated_systolic_hypertension: bool | None
    display_level: BpDisplayLevel


@dataclass(frozen=True, slots=True)
class BpWindowClassification:
    """Classification of the mean of the readings in a window, with how many readings were crises."""

    window_start_epoch_s: float
    window_end_epoch_s: float
    n_readings: int
    crisis_reading_count: int
    mean: BpClassification


def _check_reading(systolic_mmhg: float, diastolic_mmhg: float, where: str = "") -> tuple[float, float]:
    values: list[float] = []
    for name, value in (("systolic_mmhg", systolic_mmhg), ("diastolic_mmhg", diastolic_mmhg)):
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise ValueError(f"{name}{where}: expected a number in mmHg, got {value!r}")
        number = float(value)
        if not math.isfinite(number) or number <= 0:
            raise ValueError(f"{name}{where}: must be a finite value > 0 mmHg, got {value!r}")
        values.append(number)
    systolic, diastolic = values
    if systolic <= diastolic:
        raise ValueError(
            f"systolic_mmhg{where} ({systolic:g}) must be greater than diastolic_mmhg{where} ({diastolic:g})"
        )
    return systolic, diastolic


def is_hypertensive_crisis(systolic_mmhg: float, diastolic_mmhg: float) -> bool:
    """True when SBP > 180 and/or DBP > 120 mmHg (strictly), whatever guideline classifies the reading.

    Raises ValueError naming the field for a non-positive value or systolic <= diastolic.
    Source: ACC/AHA 2017 section 11.2, doi 10.1161/HYP.0000000000000065.
    """
    systolic, diastolic = _check_reading(systolic_mmhg, diastolic_mmhg)
    return systolic > CRISIS_SYSTOLIC_ABOVE_MMHG or diastolic > CRISIS_DIASTOLIC_ABOVE_MMHG


def classify_bp(
    systolic_mmhg: float,
    diastolic_mmhg: float,
    *,
    guideline: BpGuideline = BpGuideline.ACC_AHA_2017,
) -> BpClassification:
    """Classify one reading (mmHg): the higher of the systolic and diastolic categories of ``guideline``.

    Also flags a hypertensive crisis (> 180 and/or > 120) and, for ESC/ESH and KSH, isolated systolic
    hypertension (>= 140 and < 90); gives the three-level display level (module doc).
    Raises ValueError naming the field for a non-positive/non-finite value or systolic <= diastolic.
    Source: the chosen guideline's table (DOIs on BpGuideline); crisis: ACC/AHA 2017, doi 10.1161/HYP.0000000000000065.
    """
    systolic, diastolic = _check_reading(systolic_mmhg, diastolic_mmhg)
    table = _TABLES[BpGuideline(guideline)]
    systolic_rank = table.category_of(systolic, table.systolic_from_mmhg)
    diastolic_rank = table.category_of(diastolic, table.diastolic_from_mmhg)
    rank = max(systolic_rank, diastolic_rank)
    crisis = systolic > CRISIS_SYSTOLIC_ABOVE_MMHG or diastolic > CRISIS_DIASTOLIC_ABOVE_MMHG
    isolated: bool | None = None
    if table.defines_isolated_systolic:
        isolated = systolic >= ISOLATED_SYSTOLIC_MIN_MMHG and diastolic < ISOLATED_DIASTOLIC_BELOW_MMHG
    return BpClassification(
        guideline=BpGuideline(guideline),
        systolic_mmhg=systolic,
        diastolic_mmhg=diastolic,
        category=table.categories[rank],
        systolic_category=table.categories[systolic_rank],
        diastolic_category=table.categories[diastolic_rank],
        crisis=crisis,
        isolated_systolic_hypertension=isolated,
        display_level=BpDisplayLevel.DANGER if crisis else table.display[rank],
    )


def classify_bp_window(
    timestamps: TimestampsInput,
    systolic_mmhg: Sequence[float],
    diastolic_mmhg: Sequence[float],
    *,
    guideline: BpGuideline = BpGuideline.ACC_AHA_2017,
    window_days: float = DEFAULT_WINDOW_DAYS,
    window_end: Timestamp | None = None,
) -> BpWindowClassification | None:
    """Classify the mean SBP and mean DBP of the readings in (window_end - window_days, window_end].

    Default window: the 7 days up to and including the latest reading. Every reading is validated as in
    :func:`classify_bp` (the error names the field and index). None when no reading falls in the window.
    Source: ESC/ESH 2018 (home BP as the mean over up to 7 days), doi 10.1093/eurheartj/ehy339.
    """
    seconds = epoch_seconds(timestamps)
    if not len(seconds) == len(systolic_mmhg) == len(diastolic_mmhg):
        raise ValueError(
            "timestamps, systolic_mmhg and diastolic_mmhg must have the same length, got "
            f"{len(seconds)}, {len(systolic_mmhg)} and {len(diastolic_mmhg)}"
        )
    days = require_positive(window_days, "window_days")
    pairs = [_check_reading(s, d, f"[{i}]") for i, (s, d) in enumerate(zip(systolic_mmhg, diastolic_mmhg, strict=True))]
    if not pairs:
        return None
    end_s = float(seconds.max()) if window_end is None else float(epoch_seconds([window_end], field="window_end")[0])
    start_s = end_s - days * SECONDS_PER_DAY
    inside = [pair for pair, second in zip(pairs, seconds, strict=True) if start_s < second <= end_s]
    if not inside:
        return None
    mean_systolic = float(np.mean([s for s, _ in inside]))
    mean_diastolic = float(np.mean([d for _, d in inside]))
    return BpWindowClassification(
        window_start_epoch_s=start_s,
        window_end_epoch_s=end_s,
        n_readings=len(inside),
        crisis_reading_count=sum(s > CRISIS_SYSTOLIC_ABOVE_MMHG or d > CRISIS_DIASTOLIC_ABOVE_MMHG for s, d in inside),
        mean=classify_bp(mean_systolic, mean_diastolic, guideline=guideline),
    )
