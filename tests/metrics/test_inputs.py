"""Input normalisation: glucose arrays, timestamps and their validation errors."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from streams.metrics.inputs import (
    epoch_seconds,
    glucose_array,
    require_percent,
    require_positive,
    sorted_readings,
)


def test_glucose_array_keeps_nan_and_converts_to_float() -> None:
    values = glucose_array([100, float("nan"), 55.5])
    assert values.dtype == np.float64
    assert values[0] == 100.0
    assert math.isnan(values[1])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([[100, 120]], "1-D"),
        ([100, 0], "> 0 mg/dL"),
        ([100, -5], "> 0 mg/dL"),
        ([100, float("inf")], "finite"),
        (["abc"], "numbers"),
    ],
)
def test_glucose_array_rejects_bad_input_naming_the_field(bad: object, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        glucose_array(bad)  # type: ignore[arg-type]
    assert "glucose_mg_dl" in str(info.value)


def test_epoch_seconds_accepts_aware_datetimes_and_numbers() -> None:
    seoul = timezone(timedelta(hours=9))
    stamps: list[datetime | float] = [datetime(2024, 1, 1, 9, 0, tzinfo=seoul), 1_704_067_500, 1_704_067_800.0]
    assert epoch_seconds(stamps).tolist() == [1_704_067_200.0, 1_704_067_500.0, 1_704_067_800.0]


def test_epoch_seconds_rejects_naive_datetime_with_its_index() -> None:
    with pytest.raises(ValueError, match=r"timestamps\[1\]: naive datetime"):
        epoch_seconds([datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1)])


@pytest.mark.parametrize("bad", [True, "2024-01-01", None])
def test_epoch_seconds_rejects_other_types(bad: object) -> None:
    with pytest.raises(TypeError, match=r"timestamps\[0\]"):
        epoch_seconds([bad])  # type: ignore[list-item]


def test_epoch_seconds_rejects_non_finite_arrays() -> None:
    with pytest.raises(ValueError, match="finite"):
        epoch_seconds(np.array([0.0, np.nan]))


def test_sorted_readings_drops_nan_and_sorts_by_time() -> None:
    seconds, values = sorted_readings([600, 0, 300, 900], [90, 80, float("nan"), 100])
    assert seconds.tolist() == [0.0, 600.0, 900.0]
    assert values.tolist() == [80.0, 90.0, 100.0]


def test_sorted_readings_requires_equal_lengths() -> None:
    with pytest.raises(ValueError, match="same length"):
        sorted_readings([0, 300], [100])


def test_require_positive_and_percent() -> None:
    assert require_positive(5, "interval_min") == 5.0
    with pytest.raises(ValueError, match="interval_min"):
        require_positive(0, "interval_min")
    with pytest.raises(ValueError, match="interval_min"):
        require_positive(float("nan"), "interval_min")
    assert require_percent(100, "share") == 100.0
    with pytest.raises(ValueError, match="share"):
        require_percent(100.01, "share")
