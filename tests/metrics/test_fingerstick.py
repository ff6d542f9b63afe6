"""Fasting categories and meal targets at their boundaries."""

from __future__ import annotations

import pytest

from streams.metrics.fingerstick import (
    FastingCategory,
    classify_fasting_glucose,
    postprandial_in_target,
    preprandial_in_target,
)


@pytest.mark.parametrize(
    ("glucose_mg_dl", "category"),
    [
        (70, FastingCategory.NORMAL),
        (99, FastingCategory.NORMAL),
        (99.9, FastingCategory.NORMAL),
        (100, FastingCategory.PREDIABETES),
        (125, FastingCategory.PREDIABETES),
        (125.5, FastingCategory.PREDIABETES),  # between the printed ranges: the lower one
        (126, FastingCategory.DIABETES),
        (300, FastingCategory.DIABETES),
    ],
)
def test_fasting_categories_split_at_100_and_126(glucose_mg_dl: float, category: FastingCategory) -> None:
    assert classify_fasting_glucose(glucose_mg_dl) is category


@pytest.mark.parametrize(("glucose_mg_dl", "in_target"), [(179, True), (179.9, True), (180, False), (181, False)])
def test_postprandial_target_is_strictly_below_180(glucose_mg_dl: float, in_target: bool) -> None:
    assert postprandial_in_target(glucose_mg_dl) is in_target


@pytest.mark.parametrize(("glucose_mg_dl", "in_target"), [(79, False), (80, True), (130, True), (130.1, False)])
def test_preprandial_target_is_80_to_130_inclusive(glucose_mg_dl: float, in_target: bool) -> None:
    assert preprandial_in_target(glucose_mg_dl) is in_target


def test_thresholds_are_keyword_arguments() -> None:
    assert postprandial_in_target(150, below_mg_dl=140) is False
    assert classify_fasting_glucose(105, prediabetes_min_mg_dl=110) is FastingCategory.NORMAL


@pytest.mark.parametrize("bad", [0, -5, float("nan")])
def test_invalid_glucose_names_the_field(bad: float) -> None:
    with pytest.raises(ValueError, match="glucose_mg_dl"):
        classify_fasting_glucose(bad)
    with pytest.raises(ValueError, match="glucose_mg_dl"):
        postprandial_in_target(bad)
