"""Glycemia Risk Index (GRI) and its zones A-E.

GRI = 3.0 x VLow + 2.4 x Low + 1.6 x VHigh + 0.8 x High, capped at 100, where the four terms are the shares
(% of readings) in EXCLUSIVE bands: VLow G < 54, Low 54 <= G < 70, High 180 < G <= 250, VHigh G > 250 mg/dL.
Equivalently GRI = 3.0 x hypo component + 1.6 x hyper component, hypo = VLow + 0.8 Low, hyper = VHigh + 0.5 High.
iglu 4.3 ``gri`` uses these same bands: it takes below_54, below_70 - below_54, above_250 and
above_180 - above_250 from its reading-share functions (< and > as above), so values agree exactly.
Zones: the paper reports them as A 0-20, B 21-40, C 41-60, D 61-80, E 81-100 (integer GRI). For a
continuous GRI we make each upper bound inclusive: A <= 20 < B <= 40 < C <= 60 < D <= 80 < E.
Source: Klonoff et al. 2022, J Diabetes Sci Technol 17(5), doi 10.1177/19322968221085273.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from streams.metrics.inputs import glucose_array, require_percent

VERY_LOW_BELOW_MG_DL = 54.0
LOW_BELOW_MG_DL = 70.0
HIGH_ABOVE_MG_DL = 180.0
VERY_HIGH_ABOVE_MG_DL = 250.0

VERY_LOW_WEIGHT = 3.0
LOW_WEIGHT = 2.4
VERY_HIGH_WEIGHT = 1.6
HIGH_WEIGHT = 0.8
# Component form: GRI = 3.0 x (VLow + 0.8 Low) + 1.6 x (VHigh + 0.5 High).
HYPO_COMPONENT_LOW_FACTOR = LOW_WEIGHT / VERY_LOW_WEIGHT
HYPER_COMPONENT_HIGH_FACTOR = HIGH_WEIGHT / VERY_HIGH_WEIGHT
GRI_MAX = 100.0

# Inclusive upper bound of each zone; anything above the last bound is zone E.
ZONE_A_MAX = 20.0
ZONE_B_MAX = 40.0
ZONE_C_MAX = 60.0
ZONE_D_MAX = 80.0

PERCENT = 100.0


class GriZone(StrEnum):
    """GRI zone, A (lowest risk) to E (highest); Klonoff et al. 2022."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"
    E = "E"


@dataclass(frozen=True, slots=True)
class GriBands:
    """Shares of readings, %, in the four exclusive GRI bands."""

    very_low_pct: float
    low_pct: float
    high_pct: float
    very_high_pct: float


@dataclass(frozen=True, slots=True)
class GriResult:
    """GRI with its components and zone."""

    gri: float
    hypo_component_pct: float
    hyper_component_pct: float
    zone: GriZone


def gri_bands(glucose_mg_dl: npt.ArrayLike) -> GriBands:
    """Shares of non-NaN readings, %, in VLow (<54), Low (54-<70), High (>180-<=250), VHigh (>250) mg/dL.

    All four are NaN when no readings remain.
    Source: Klonoff et al. 2022, doi 10.1177/19322968221085273 (band definitions).
    """
    values = glucose_array(glucose_mg_dl)
    values = values[~np.isnan(values)]
    if values.size == 0:
        return GriBands(math.nan, math.nan, math.nan, math.nan)

    def share(mask: npt.NDArray[np.bool_]) -> float:
        return float(np.count_nonzero(mask)) / values.size * PERCENT

    return GriBands(
        very_low_pct=share(values < VERY_LOW_BELOW_MG_DL),
        low_pct=share((values >= VERY_LOW_BELOW_MG_DL) & (values < LOW_BELOW_MG_DL)),
        high_pct=share((values > HIGH_ABOVE_MG_DL) & (values <= VERY_HIGH_ABOVE_MG_DL)),
        very_high_pct=share(values > VERY_HIGH_ABOVE_MG_DL),
    )


def gri_from_bands(
    *,
    very_low_pct: float,
    low_pct: float,
    high_pct: float,
    very_high_pct: float,
) -> float:
    """GRI (0-100) = min(100, 3.0 VLow + 2.4 Low + 1.6 VHigh + 0.8 High), inputs in % of readings.

    Raises ValueError naming the field when a share is not in [0, 100] (NaN included).
    Source: Klonoff et al. 2022, doi 10.1177/19322968221085273.
    """
    very_low = require_percent(very_low_pct, "very_low_pct")
    low = require_percent(low_pct, "low_pct")
    high = require_percent(high_pct, "high_pct")
    very_high = require_percent(very_high_pct, "very_high_pct")
    raw = VERY_LOW_WEIGHT * very_low + LOW_WEIGHT * low + VERY_HIGH_WEIGHT * very_high + HIGH_WEIGHT * high
    return min(raw, GRI_MAX)


def gri(glucose_mg_dl: npt.ArrayLike) -> float:
    """GRI (0-100) from readings in mg/dL, via :func:`gri_bands`; NaN when no non-NaN readings.

    Source: Klonoff et al. 2022, doi 10.1177/19322968221085273; matches iglu 4.3 ``gri``.
    """
    bands = gri_bands(glucose_mg_dl)
    if math.isnan(bands.very_low_pct):
        return math.nan
    return gri_from_bands(
        very_low_pct=bands.very_low_pct,
        low_pct=bands.low_pct,
        high_pct=bands.high_pct,
        very_high_pct=bands.very_high_pct,
    )


def gri_zone(gri_value: float) -> GriZone:
    """Zone of a GRI value: A <= 20 < B <= 40 < C <= 60 < D <= 80 < E (upper bounds inclusive).

    Raises ValueError when gri_value is not in [0, 100] (NaN included).
    Source: Klonoff et al. 2022, doi 10.1177/19322968221085273 (zones A 0-20 ... E 81-100).
    """
    value = require_percent(gri_value, "gri_value")
    for bound, zone in (
        (ZONE_A_MAX, GriZone.A),
        (ZONE_B_MAX, GriZone.B),
        (ZONE_C_MAX, GriZone.C),
        (ZONE_D_MAX, GriZone.D),
    ):
        if value <= bound:
            return zone
    return GriZone.E


def gri_result(glucose_mg_dl: npt.ArrayLike) -> GriResult | None:
    """GRI, its hypo (VLow + 0.8 Low) and hyper (VHigh + 0.5 High) components in %, and zone.

    None when there are no non-NaN readings.
    Source: Klonoff et al. 2022, doi 10.1177/19322968221085273.
    """
    bands = gri_bands(glucose_mg_dl)
    if math.isnan(bands.very_low_pct):
        return None
    value = gri_from_bands(
        very_low_pct=bands.very_low_pct,
        low_pct=bands.low_pct,
        high_pct=bands.high_pct,
        very_high_pct=bands.very_high_pct,
    )
    return GriResult(
        gri=value,
        hypo_component_pct=bands.very_low_pct + HYPO_COMPONENT_LOW_FACTOR * bands.low_pct,
        hyper_component_pct=bands.very_high_pct + HYPER_COMPONENT_HIGH_FACTOR * bands.high_pct,
        zone=gri_zone(value),
    )
