"""LBGI/HBGI: iglu reference values, the split at 112.5 mg/dL, NaN and empty input."""

from __future__ import annotations

import math
from typing import Any

import pytest

from streams.metrics.risk import hbgi, lbgi

Subjects = dict[str, tuple[list[float], list[float]]]


@pytest.mark.parametrize(("reference_key", "compute"), [("lbgi", lbgi), ("hbgi", hbgi)])
def test_matches_iglu_on_example_data(
    iglu_example: Subjects, iglu_reference: dict[str, Any], reference_key: str, compute: Any
) -> None:
    for subject, (_, glucose) in iglu_example.items():
        expected = iglu_reference[reference_key][subject]
        assert compute(glucose) == pytest.approx(expected, rel=1e-3, abs=1e-9), subject


def test_single_reading_by_hand() -> None:
    # f(50) = ln(50)^1.084 - 5.381; risk = 22.77 f^2
    f_50 = math.log(50) ** 1.084 - 5.381
    assert lbgi([50.0]) == pytest.approx(22.77 * f_50**2)
    assert hbgi([50.0]) == 0.0
    f_300 = math.log(300) ** 1.084 - 5.381
    assert hbgi([300.0]) == pytest.approx(22.77 * f_300**2)
    assert lbgi([300.0]) == 0.0


def test_index_is_a_mean_over_all_readings() -> None:
    # A high reading adds nothing to LBGI but counts in its denominator.
    assert lbgi([50.0, 300.0]) == pytest.approx(lbgi([50.0]) / 2)
    assert hbgi([50.0, 300.0]) == pytest.approx(hbgi([300.0]) / 2)


def test_both_indices_are_near_zero_at_the_split() -> None:
    assert lbgi([112.4]) < 1e-4
    assert hbgi([112.5]) < 1e-4


def test_nan_is_dropped_and_empty_is_nan() -> None:
    assert lbgi([50.0, float("nan")]) == lbgi([50.0])
    assert math.isnan(lbgi([]))
    assert math.isnan(hbgi([float("nan")]))
