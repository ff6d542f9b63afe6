"""Data sufficiency: iglu active_percent reference values, window coverage and the 70 % / 14-day flag."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.metrics.sufficiency import (
    assess_data_sufficiency,
    cgm_active_pct,
    is_data_sufficient,
    window_coverage_pct,
)

Subjects = dict[str, tuple[list[float], list[float]]]
FIVE_MIN_S = 300.0
DAY_S = 86_400.0


@pytest.mark.parametrize(
    ("reference_key", "interval_min"),
    [("active_percent", None), ("active_percent", 5.0), ("active_percent_dt0_10", 10.0)],
)
def test_active_percent_matches_iglu(
    iglu_example: Subjects, iglu_reference: dict[str, Any], reference_key: str, interval_min: float | None
) -> None:
    for subject, (seconds, _) in iglu_example.items():
        expected = iglu_reference[reference_key][subject]
        assert cgm_active_pct(seconds, interval_min=interval_min) == pytest.approx(expected, rel=1e-3), subject


def test_active_percent_iglu_documentation_example() -> None:
    # iglu's doc: readings due at 0, 5, 10, 15 min with the one at 5 missing -> 75 %.
    assert cgm_active_pct([0.0, 600.0, 900.0]) == 75.0


def test_active_percent_edges() -> None:
    assert cgm_active_pct([0.0, FIVE_MIN_S, 2 * FIVE_MIN_S]) == 100.0
    assert cgm_active_pct([1_000.0]) == 100.0
    assert math.isnan(cgm_active_pct([]))
    with pytest.raises(ValueError, match="interval_min"):
        cgm_active_pct([1_000.0], interval_min=None)
    with pytest.raises(ValueError, match="interval_min"):
        cgm_active_pct([0.0, 300.0], interval_min=0)


def _every_five_minutes(start_s: float, days: float) -> list[float]:
    return [start_s + i * FIVE_MIN_S for i in range(int(days * DAY_S / FIVE_MIN_S))]


def test_full_14_days_is_100_percent_and_capped() -> None:
    stamps = _every_five_minutes(0.0, 14)
    # 4032 readings; the closed window [end - 14 d, end] would hold one more, which the cap absorbs.
    end = stamps[-1]
    assert window_coverage_pct(stamps, window_end=end) == pytest.approx(100 * 4032 / 4032)
    assert window_coverage_pct([*stamps, end + FIVE_MIN_S], window_end=end + FIVE_MIN_S) == 100.0


def test_window_coverage_counts_only_readings_inside_and_distinct() -> None:
    stamps = _every_five_minutes(0.0, 7)  # 2016 readings in the last 7 of 14 days
    end = stamps[-1]
    assert window_coverage_pct(stamps, window_end=end) == pytest.approx(50.0)
    assert window_coverage_pct(stamps + stamps, window_end=end) == pytest.approx(50.0)
    # Readings after window_end are not counted: up to day 3.5 that is readings 0..1008.
    assert window_coverage_pct(stamps, window_end=3.5 * DAY_S) == pytest.approx(100 * 1009 / 4032)


def test_window_end_accepts_aware_datetime_and_defaults_to_last_reading() -> None:
    start = datetime(2024, 3, 1, tzinfo=UTC)
    stamps = [start + timedelta(minutes=5 * i) for i in range(288)]
    by_default = window_coverage_pct(stamps, window_days=1)
    assert by_default == pytest.approx(100.0)
    # Window [00:05, next day 00:05] holds the readings from 00:05 to 23:55.
    later_end = start + timedelta(days=1, minutes=5)
    assert window_coverage_pct(stamps, window_days=1, window_end=later_end) == pytest.approx(100 * 287 / 288)


@pytest.mark.parametrize(
    ("coverage", "sufficient"), [(70.0, True), (69.99, False), (100.0, True), (float("nan"), False)]
)
def test_sufficiency_threshold_is_inclusive(coverage: float, sufficient: bool) -> None:
    assert is_data_sufficient(coverage) is sufficient


def test_assess_data_sufficiency_at_the_boundary() -> None:
    # 70 % of 4032 expected readings = 2822.4 -> 2823 readings suffice, 2822 do not.
    enough = _every_five_minutes(0.0, 14)[-2823:]
    short = enough[1:]
    end = enough[-1]
    assert assess_data_sufficiency(enough, window_end=end).sufficient is True
    result = assess_data_sufficiency(short, window_end=end)
    assert result.sufficient is False
    assert result.coverage_pct == pytest.approx(100 * 2822 / 4032)
    assert result.window_days == 14.0
    assert assess_data_sufficiency([], window_end=end).sufficient is False
