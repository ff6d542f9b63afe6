"""Core CGM metrics: iglu reference values, range boundaries, NaN and empty input."""

from __future__ import annotations

import math
from typing import Any

import pytest

from streams.metrics.cgm import (
    cv_pct,
    gmi_pct,
    mean_glucose_mg_dl,
    sd_glucose_mg_dl,
    summarize_cgm,
    time_above_pct,
    time_below_pct,
    time_in_range_pct,
)

Subjects = dict[str, tuple[list[float], list[float]]]

# 3 significant figures, as the reference check asks; our values in fact agree to ~1e-12.
REL = 1e-3
ABS = 1e-9


@pytest.mark.parametrize(
    ("reference_key", "compute"),
    [
        ("mean_glu", mean_glucose_mg_dl),
        ("sd_glu", sd_glucose_mg_dl),
        ("cv_glu", cv_pct),
        ("gmi", gmi_pct),
        ("in_range_70_180", time_in_range_pct),
        ("in_range_63_140", lambda g: time_in_range_pct(g, low_mg_dl=63, high_mg_dl=140)),
        ("below_54", lambda g: time_below_pct(g, threshold_mg_dl=54)),
        ("below_70", time_below_pct),
        ("above_180", time_above_pct),
        ("above_250", lambda g: time_above_pct(g, threshold_mg_dl=250)),
    ],
)
def test_matches_iglu_on_example_data(
    iglu_example: Subjects, iglu_reference: dict[str, Any], reference_key: str, compute: Any
) -> None:
    expected = iglu_reference[reference_key]
    assert set(expected) == set(iglu_example)
    for subject, (_, glucose) in iglu_example.items():
        assert compute(glucose) == pytest.approx(expected[subject], rel=REL, abs=ABS), subject


def test_summary_matches_the_single_functions(iglu_example: Subjects) -> None:
    glucose = iglu_example["Subject 3"][1]
    summary = summarize_cgm(glucose)
    assert summary.n_readings == len(glucose)
    assert summary.mean_mg_dl == mean_glucose_mg_dl(glucose)
    assert summary.cv_pct == cv_pct(glucose)
    assert summary.time_in_range_70_180_pct == time_in_range_pct(glucose)
    assert summary.time_below_54_pct == time_below_pct(glucose, threshold_mg_dl=54)
    assert summary.time_above_250_pct == time_above_pct(glucose, threshold_mg_dl=250)


def test_hand_computed_values() -> None:
    glucose = [100.0, 150.0, 200.0]
    assert mean_glucose_mg_dl(glucose) == 150.0
    assert sd_glucose_mg_dl(glucose) == 50.0  # sample SD: sqrt((2500 + 0 + 2500) / 2)
    assert cv_pct(glucose) == pytest.approx(100 * 50 / 150)
    assert gmi_pct([150.0]) == pytest.approx(3.31 + 0.02392 * 150)  # 6.898 %


def test_range_boundaries_follow_iglu_conventions() -> None:
    # TIR is inclusive at both ends; below/above are strict.
    glucose = [69.9, 70.0, 180.0, 180.1]
    assert time_in_range_pct(glucose) == 50.0
    assert time_below_pct(glucose) == 25.0
    assert time_below_pct([70.0]) == 0.0
    assert time_below_pct([53.9, 54.0], threshold_mg_dl=54) == 50.0
    assert time_above_pct(glucose) == 25.0
    assert time_above_pct([180.0]) == 0.0
    assert time_above_pct([250.0, 250.1], threshold_mg_dl=250) == 50.0


def test_nan_readings_are_left_out_of_numerator_and_denominator() -> None:
    glucose = [60.0, float("nan"), 100.0, float("nan")]
    assert time_below_pct(glucose) == 50.0
    assert mean_glucose_mg_dl(glucose) == 80.0
    assert summarize_cgm(glucose).n_readings == 2


@pytest.mark.parametrize("empty", [[], [float("nan")]])
def test_no_readings_give_nan(empty: list[float]) -> None:
    summary = summarize_cgm(empty)
    assert summary.n_readings == 0
    for value in (
        summary.mean_mg_dl,
        summary.sd_mg_dl,
        summary.cv_pct,
        summary.gmi_pct,
        summary.time_in_range_70_180_pct,
        summary.time_below_54_pct,
        summary.time_above_250_pct,
    ):
        assert math.isnan(value)


def test_sd_and_cv_need_two_readings() -> None:
    assert math.isnan(sd_glucose_mg_dl([120.0]))
    assert math.isnan(cv_pct([120.0]))
    assert mean_glucose_mg_dl([120.0]) == 120.0


def test_reversed_range_is_refused() -> None:
    with pytest.raises(ValueError, match="low_mg_dl"):
        time_in_range_pct([100.0], low_mg_dl=180, high_mg_dl=70)


def test_invalid_readings_are_refused() -> None:
    with pytest.raises(ValueError, match="glucose_mg_dl"):
        mean_glucose_mg_dl([100.0, 0.0])
