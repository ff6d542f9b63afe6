"""Blood-pressure classification: each side of every threshold of the three guidelines, flags, windows."""

from __future__ import annotations

import pytest

from streams.metrics.bp import (
    ISOLATED_SYSTOLIC_LABEL,
    ISOLATED_SYSTOLIC_LABEL_KO,
    AccAhaCategory,
    BpCategory,
    BpDisplayLevel,
    BpGuideline,
    EscEshCategory,
    KshCategory,
    classify_bp,
    classify_bp_window,
    is_hypertensive_crisis,
)

ACC = BpGuideline.ACC_AHA_2017
ESC = BpGuideline.ESC_ESH_2018
KSH = BpGuideline.KSH_2018
DAY_S = 86_400.0

# (systolic, diastolic, expected category); diastolic held low to test systolic bounds and vice versa.
ACC_CASES: list[tuple[float, float, BpCategory]] = [
    (119, 70, AccAhaCategory.NORMAL),
    (120, 70, AccAhaCategory.ELEVATED),
    (129, 70, AccAhaCategory.ELEVATED),
    (130, 70, AccAhaCategory.STAGE_1),
    (139, 70, AccAhaCategory.STAGE_1),
    (140, 70, AccAhaCategory.STAGE_2),
    (110, 79, AccAhaCategory.NORMAL),
    (110, 80, AccAhaCategory.STAGE_1),  # no diastolic "elevated": 80-89 is stage 1
    (110, 89, AccAhaCategory.STAGE_1),
    (110, 90, AccAhaCategory.STAGE_2),
    (125, 85, AccAhaCategory.STAGE_1),  # the higher of elevated and stage 1
    (129.9, 79.9, AccAhaCategory.ELEVATED),  # fractional means split at the printed lower bounds
    (119.99, 79.99, AccAhaCategory.NORMAL),
]
ESC_CASES: list[tuple[float, float, BpCategory]] = [
    (119, 70, EscEshCategory.OPTIMAL),
    (120, 70, EscEshCategory.NORMAL),
    (129, 70, EscEshCategory.NORMAL),
    (130, 70, EscEshCategory.HIGH_NORMAL),
    (139, 70, EscEshCategory.HIGH_NORMAL),
    (140, 70, EscEshCategory.GRADE_1),
    (159, 70, EscEshCategory.GRADE_1),
    (160, 70, EscEshCategory.GRADE_2),
    (179, 70, EscEshCategory.GRADE_2),
    (180, 70, EscEshCategory.GRADE_3),
    (110, 79, EscEshCategory.OPTIMAL),
    (110, 80, EscEshCategory.NORMAL),
    (110, 84, EscEshCategory.NORMAL),
    (110, 85, EscEshCategory.HIGH_NORMAL),
    (115, 89, EscEshCategory.HIGH_NORMAL),
    (115, 90, EscEshCategory.GRADE_1),
    (115, 99, EscEshCategory.GRADE_1),
    (115, 100, EscEshCategory.GRADE_2),
    (115, 109, EscEshCategory.GRADE_2),
    (115, 110, EscEshCategory.GRADE_3),
    (135, 95, EscEshCategory.GRADE_1),
]
KSH_CASES: list[tuple[float, float, BpCategory]] = [
    (119, 70, KshCategory.NORMAL),
    (120, 70, KshCategory.ELEVATED),
    (129, 70, KshCategory.ELEVATED),
    (130, 70, KshCategory.PREHYPERTENSION),
    (139, 70, KshCategory.PREHYPERTENSION),
    (140, 70, KshCategory.GRADE_1),
    (159, 70, KshCategory.GRADE_1),
    (160, 70, KshCategory.GRADE_2),
    (110, 79, KshCategory.NORMAL),
    (110, 80, KshCategory.PREHYPERTENSION),
    (110, 89, KshCategory.PREHYPERTENSION),
    (110, 90, KshCategory.GRADE_1),
    (110, 99, KshCategory.GRADE_1),
    (110, 100, KshCategory.GRADE_2),
    (125, 85, KshCategory.PREHYPERTENSION),
]


@pytest.mark.parametrize(
    ("guideline", "systolic", "diastolic", "expected"),
    [(ACC, *case) for case in ACC_CASES] + [(ESC, *case) for case in ESC_CASES] + [(KSH, *case) for case in KSH_CASES],
)
def test_category_at_each_side_of_each_threshold(
    guideline: BpGuideline, systolic: float, diastolic: float, expected: BpCategory
) -> None:
    result = classify_bp(systolic, diastolic, guideline=guideline)
    assert result.category is expected
    assert result.guideline is guideline


def test_default_guideline_is_acc_aha() -> None:
    assert classify_bp(125, 75).category is AccAhaCategory.ELEVATED


@pytest.mark.parametrize(
    ("systolic", "diastolic", "crisis"),
    [(180, 100, False), (181, 100, True), (180.5, 100, True), (150, 120, False), (150, 121, True)],
)
def test_crisis_is_flagged_for_every_guideline(systolic: float, diastolic: float, crisis: bool) -> None:
    assert is_hypertensive_crisis(systolic, diastolic) is crisis
    for guideline in BpGuideline:
        result = classify_bp(systolic, diastolic, guideline=guideline)
        assert result.crisis is crisis
        if crisis:
            assert result.display_level is BpDisplayLevel.DANGER


@pytest.mark.parametrize(
    ("guideline", "systolic", "diastolic", "isolated"),
    [
        (ESC, 140, 89, True),
        (ESC, 139, 89, False),
        (ESC, 140, 90, False),
        (ESC, 165, 70, True),
        (KSH, 140, 89, True),
        (KSH, 139, 60, False),
        (KSH, 150, 90, False),
        (ACC, 150, 70, None),  # ACC/AHA's table does not define it
    ],
)
def test_isolated_systolic_hypertension(
    guideline: BpGuideline, systolic: float, diastolic: float, isolated: bool | None
) -> None:
    assert classify_bp(systolic, diastolic, guideline=guideline).isolated_systolic_hypertension is isolated


def test_isolated_systolic_keeps_its_grade() -> None:
    result = classify_bp(165, 85, guideline=ESC)
    assert (result.category, result.isolated_systolic_hypertension) == (EscEshCategory.GRADE_2, True)


@pytest.mark.parametrize(
    ("guideline", "category", "level"),
    [
        (ACC, AccAhaCategory.NORMAL, BpDisplayLevel.NORMAL),
        (ACC, AccAhaCategory.ELEVATED, BpDisplayLevel.BORDERLINE),
        (ACC, AccAhaCategory.STAGE_1, BpDisplayLevel.BORDERLINE),
        (ACC, AccAhaCategory.STAGE_2, BpDisplayLevel.DANGER),
        (ESC, EscEshCategory.OPTIMAL, BpDisplayLevel.NORMAL),
        (ESC, EscEshCategory.NORMAL, BpDisplayLevel.NORMAL),
        (ESC, EscEshCategory.HIGH_NORMAL, BpDisplayLevel.BORDERLINE),
        (ESC, EscEshCategory.GRADE_1, BpDisplayLevel.DANGER),
        (ESC, EscEshCategory.GRADE_2, BpDisplayLevel.DANGER),
        (ESC, EscEshCategory.GRADE_3, BpDisplayLevel.DANGER),
        (KSH, KshCategory.NORMAL, BpDisplayLevel.NORMAL),
        (KSH, KshCategory.ELEVATED, BpDisplayLevel.BORDERLINE),
        (KSH, KshCategory.PREHYPERTENSION, BpDisplayLevel.BORDERLINE),
        (KSH, KshCategory.GRADE_1, BpDisplayLevel.DANGER),
        (KSH, KshCategory.GRADE_2, BpDisplayLevel.DANGER),
    ],
)
def test_three_level_display_mapping(guideline: BpGuideline, category: BpCategory, level: BpDisplayLevel) -> None:
    cases = {ACC: ACC_CASES, ESC: ESC_CASES, KSH: KSH_CASES}[guideline]
    systolic, diastolic, _ = next(case for case in cases if case[2] is category)
    result = classify_bp(systolic, diastolic, guideline=guideline)
    assert result.category is category
    assert result.display_level is level


def test_danger_starts_at_140_90_for_all_guidelines() -> None:
    for guideline in BpGuideline:
        assert classify_bp(139, 70, guideline=guideline).display_level is not BpDisplayLevel.DANGER
        assert classify_bp(140, 70, guideline=guideline).display_level is BpDisplayLevel.DANGER
        assert classify_bp(110, 89, guideline=guideline).display_level is not BpDisplayLevel.DANGER
        assert classify_bp(110, 90, guideline=guideline).display_level is BpDisplayLevel.DANGER


def test_labels_and_korean_labels() -> None:
    assert AccAhaCategory.STAGE_2.label == "Stage 2 hypertension"
    assert EscEshCategory.HIGH_NORMAL.label == "High normal"
    assert [c.label_ko for c in KshCategory] == ["정상혈압", "주의혈압", "고혈압 전단계", "1기 고혈압", "2기 고혈압"]
    assert KshCategory.PREHYPERTENSION.label == "Prehypertension"
    assert ISOLATED_SYSTOLIC_LABEL == "Isolated systolic hypertension"
    assert ISOLATED_SYSTOLIC_LABEL_KO == "수축기 단독 고혈압"


def test_per_component_categories_are_reported() -> None:
    result = classify_bp(125, 92, guideline=ACC)
    assert (result.systolic_category, result.diastolic_category, result.category) == (
        AccAhaCategory.ELEVATED,
        AccAhaCategory.STAGE_2,
        AccAhaCategory.STAGE_2,
    )


@pytest.mark.parametrize(
    ("systolic", "diastolic", "field"),
    [
        (80, 120, "systolic_mmhg"),
        (120, 120, "systolic_mmhg"),
        (0, -10, "systolic_mmhg"),
        (-120, 80, "systolic_mmhg"),
        (120, 0, "diastolic_mmhg"),
        (float("nan"), 80, "systolic_mmhg"),
        (120, float("inf"), "diastolic_mmhg"),
        (True, 80, "systolic_mmhg"),
        ("120", 80, "systolic_mmhg"),
    ],
)
def test_invalid_readings_name_the_field(systolic: float, diastolic: float, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        classify_bp(systolic, diastolic)


def test_window_mean_over_the_last_7_days() -> None:
    # Day 0 is 8 days before the last reading: outside the default window.
    stamps = [0.0, 2 * DAY_S, 5 * DAY_S, 8 * DAY_S]
    result = classify_bp_window(stamps, [200, 130, 140, 150], [100, 80, 85, 90])
    assert result is not None
    assert result.n_readings == 3
    assert (result.mean.systolic_mmhg, result.mean.diastolic_mmhg) == (140.0, 85.0)
    assert result.mean.category is AccAhaCategory.STAGE_2
    assert result.crisis_reading_count == 0
    assert result.window_end_epoch_s == 8 * DAY_S
    assert result.window_start_epoch_s == 1 * DAY_S


def test_window_start_is_exclusive_and_end_inclusive() -> None:
    stamps = [1 * DAY_S, 8 * DAY_S]
    result = classify_bp_window(stamps, [190, 118], [100, 78], window_end=8 * DAY_S)
    assert result is not None
    assert result.n_readings == 1
    assert result.mean.category is AccAhaCategory.NORMAL


def test_window_counts_crisis_readings_and_uses_the_guideline() -> None:
    stamps = [0.0, DAY_S, 2 * DAY_S]
    result = classify_bp_window(stamps, [185, 120, 120], [95, 80, 80], guideline=ESC)
    assert result is not None
    assert result.crisis_reading_count == 1
    assert result.mean.crisis is False
    assert result.mean.category is EscEshCategory.GRADE_1  # mean 141.7/85 mmHg
    assert result.mean.isolated_systolic_hypertension is True


def test_window_without_readings_is_none() -> None:
    assert classify_bp_window([], [], []) is None
    assert classify_bp_window([0.0], [120], [80], window_end=30 * DAY_S) is None


def test_window_validates_each_reading_and_lengths() -> None:
    with pytest.raises(ValueError, match=r"systolic_mmhg\[1\]"):
        classify_bp_window([0.0, DAY_S], [120, 70], [80, 90])
    with pytest.raises(ValueError, match="same length"):
        classify_bp_window([0.0], [120, 130], [80, 85])
    with pytest.raises(ValueError, match="window_days"):
        classify_bp_window([0.0], [120], [80], window_days=0)
