"""GRI: iglu reference values, exclusive band boundaries, the cap, and zone boundaries."""

from __future__ import annotations

import math
from typing import Any

import pytest

from streams.metrics.gri import GriZone, gri, gri_bands, gri_from_bands, gri_result, gri_zone

Subjects = dict[str, tuple[list[float], list[float]]]


def test_matches_iglu_on_example_data(iglu_example: Subjects, iglu_reference: dict[str, Any]) -> None:
    for subject, (_, glucose) in iglu_example.items():
        expected = iglu_reference["gri"][subject]
        assert gri(glucose) == pytest.approx(expected, rel=1e-3, abs=1e-9), subject


@pytest.mark.parametrize(
    ("glucose_mg_dl", "band"),
    [
        (53.9, "very_low_pct"),
        (54.0, "low_pct"),
        (69.9, "low_pct"),
        (70.0, None),
        (180.0, None),
        (180.1, "high_pct"),
        (250.0, "high_pct"),
        (250.1, "very_high_pct"),
    ],
)
def test_band_boundaries_are_exclusive(glucose_mg_dl: float, band: str | None) -> None:
    bands = gri_bands([glucose_mg_dl])
    shares = {
        "very_low_pct": bands.very_low_pct,
        "low_pct": bands.low_pct,
        "high_pct": bands.high_pct,
        "very_high_pct": bands.very_high_pct,
    }
    assert shares == {name: (100.0 if name == band else 0.0) for name in shares}


def test_weights_by_hand() -> None:
    # 10 readings: 1 VLow, 2 Low, 3 High, 1 VHigh, 3 in range -> 3*10 + 2.4*20 + 1.6*10 + 0.8*30 = 118 -> cap
    glucose = [50, 60, 65, 200, 210, 220, 300, 100, 110, 120]
    assert gri(glucose) == 100.0
    # 1 Low and 1 High of 10: 2.4*10 + 0.8*10 = 32
    assert gri([60, 200, *[100] * 8]) == pytest.approx(32.0)


def test_from_bands_caps_at_100_and_validates() -> None:
    assert gri_from_bands(very_low_pct=20, low_pct=20, high_pct=0, very_high_pct=0) == 100.0
    assert gri_from_bands(very_low_pct=1, low_pct=2, high_pct=10, very_high_pct=5) == pytest.approx(
        3.0 + 4.8 + 8.0 + 8.0
    )
    with pytest.raises(ValueError, match="low_pct"):
        gri_from_bands(very_low_pct=0, low_pct=-1, high_pct=0, very_high_pct=0)
    with pytest.raises(ValueError, match="very_high_pct"):
        gri_from_bands(very_low_pct=0, low_pct=0, high_pct=0, very_high_pct=float("nan"))


@pytest.mark.parametrize(
    ("value", "zone"),
    [
        (0.0, GriZone.A),
        (20.0, GriZone.A),
        (20.01, GriZone.B),
        (40.0, GriZone.B),
        (40.01, GriZone.C),
        (60.0, GriZone.C),
        (60.01, GriZone.D),
        (80.0, GriZone.D),
        (80.01, GriZone.E),
        (100.0, GriZone.E),
    ],
)
def test_zone_boundaries(value: float, zone: GriZone) -> None:
    assert gri_zone(value) is zone


@pytest.mark.parametrize("bad", [-0.1, 100.1, float("nan")])
def test_zone_rejects_out_of_range(bad: float) -> None:
    with pytest.raises(ValueError, match="gri_value"):
        gri_zone(bad)


def test_result_components_recombine_to_gri() -> None:
    glucose = [50, 60, 200, 300, *[120] * 16]
    result = gri_result(glucose)
    assert result is not None
    assert result.hypo_component_pct == pytest.approx(5 + 0.8 * 5)
    assert result.hyper_component_pct == pytest.approx(5 + 0.5 * 5)
    assert result.gri == pytest.approx(3.0 * result.hypo_component_pct + 1.6 * result.hyper_component_pct)
    assert result.zone is GriZone.B  # 27 + 12 = 39


def test_no_readings() -> None:
    assert math.isnan(gri([]))
    assert gri_result([float("nan")]) is None
