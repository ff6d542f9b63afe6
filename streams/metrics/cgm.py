"""Core CGM summary metrics: mean, SD, CV, GMI and the time-in-ranges, as iglu 4.3 defines them.

All percentages are shares of *readings* (not of clock time), exactly as iglu's ``in_range_percent``,
``below_percent`` and ``above_percent`` compute them; with a regular sampling interval the two agree.
NaN readings are dropped before every computation (iglu's ``na.rm = TRUE``); with no readings left the
result is NaN, as R's ``mean`` of an empty vector is.
Source: Battelino et al. 2019, International Consensus on Time in Range, Diabetes Care, doi 10.2337/dci19-0028.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from streams.metrics.inputs import FloatArray, glucose_array

# Consensus ranges (Battelino 2019): TIR 70-180 inclusive; level 1/2 below and above range.
TIR_LOW_MG_DL = 70.0
TIR_HIGH_MG_DL = 180.0
TBR_LEVEL_1_MG_DL = 70.0
TBR_LEVEL_2_MG_DL = 54.0
TAR_LEVEL_1_MG_DL = 180.0
TAR_LEVEL_2_MG_DL = 250.0

# GMI (%) = 3.31 + 0.02392 x mean glucose (mg/dL); Bergenstal et al. 2018, doi 10.2337/dc18-1581.
GMI_INTERCEPT_PCT = 3.31
GMI_SLOPE_PCT_PER_MG_DL = 0.02392

PERCENT = 100.0
# R's sd() is the sample SD (n - 1 denominator).
SAMPLE_SD_DDOF = 1


def _present(glucose_mg_dl: npt.ArrayLike) -> FloatArray:
    values = glucose_array(glucose_mg_dl)
    return values[~np.isnan(values)]


def _share_pct(mask: npt.NDArray[np.bool_]) -> float:
    if mask.size == 0:
        return math.nan
    return float(np.count_nonzero(mask)) / mask.size * PERCENT


def mean_glucose_mg_dl(glucose_mg_dl: npt.ArrayLike) -> float:
    """Mean glucose, mg/dL: sum(G) / n over non-NaN readings; NaN when none.

    Source: iglu ``mean_glu``; Battelino et al. 2019, doi 10.2337/dci19-0028.
    """
    values = _present(glucose_mg_dl)
    return float(values.mean()) if values.size else math.nan


def sd_glucose_mg_dl(glucose_mg_dl: npt.ArrayLike) -> float:
    """Sample standard deviation of glucose, mg/dL: sqrt(sum((G - mean)^2) / (n - 1)).

    NaN readings dropped; NaN when fewer than two readings remain (R's ``sd``).
    Source: iglu ``sd_glu``; Battelino et al. 2019, doi 10.2337/dci19-0028.
    """
    values = _present(glucose_mg_dl)
    if values.size <= SAMPLE_SD_DDOF:
        return math.nan
    return float(values.std(ddof=SAMPLE_SD_DDOF))


def cv_pct(glucose_mg_dl: npt.ArrayLike) -> float:
    """Coefficient of variation, %: 100 x SD / mean (sample SD, n - 1).

    NaN readings dropped; NaN when fewer than two readings remain.
    Source: iglu ``cv_glu``; Battelino et al. 2019 (target <= 36 %), doi 10.2337/dci19-0028.
    """
    values = _present(glucose_mg_dl)
    if values.size <= SAMPLE_SD_DDOF:
        return math.nan
    return float(values.std(ddof=SAMPLE_SD_DDOF) / values.mean() * PERCENT)


def gmi_pct(glucose_mg_dl: npt.ArrayLike) -> float:
    """Glucose Management Indicator, % (NGSP units): 3.31 + 0.02392 x mean glucose in mg/dL.

    NaN readings dropped; NaN when none remain.
    Source: Bergenstal et al. 2018, Diabetes Care 41:2275, doi 10.2337/dc18-1581 (iglu ``gmi``).
    """
    mean_mg_dl = mean_glucose_mg_dl(glucose_mg_dl)
    return GMI_INTERCEPT_PCT + GMI_SLOPE_PCT_PER_MG_DL * mean_mg_dl


def time_in_range_pct(
    glucose_mg_dl: npt.ArrayLike,
    *,
    low_mg_dl: float = TIR_LOW_MG_DL,
    high_mg_dl: float = TIR_HIGH_MG_DL,
) -> float:
    """Share of readings with low <= G <= high (both ends inclusive), % of non-NaN readings.

    Defaults 70-180 mg/dL. NaN when no readings. Raises ValueError if low_mg_dl > high_mg_dl.
    Source: iglu ``in_range_percent`` (``gl >= lo & gl <= hi``); Battelino et al. 2019, doi 10.2337/dci19-0028.
    """
    if low_mg_dl > high_mg_dl:
        raise ValueError(f"low_mg_dl ({low_mg_dl}) must not exceed high_mg_dl ({high_mg_dl})")
    values = _present(glucose_mg_dl)
    return _share_pct((values >= low_mg_dl) & (values <= high_mg_dl))


def time_below_pct(glucose_mg_dl: npt.ArrayLike, *, threshold_mg_dl: float = TBR_LEVEL_1_MG_DL) -> float:
    """Share of readings strictly below the threshold (G < threshold), % of non-NaN readings.

    Default 70 mg/dL (level 1); use 54 for level 2. NaN when no readings.
    Source: iglu ``below_percent`` (``gl < target``); Battelino et al. 2019, doi 10.2337/dci19-0028.
    """
    values = _present(glucose_mg_dl)
    return _share_pct(values < threshold_mg_dl)


def time_above_pct(glucose_mg_dl: npt.ArrayLike, *, threshold_mg_dl: float = TAR_LEVEL_1_MG_DL) -> float:
    """Share of readings strictly above the threshold (G > threshold), % of non-NaN readings.

    Default 180 mg/dL (level 1); use 250 for level 2. NaN when no readings.
    Source: iglu ``above_percent`` (``gl > target``); Battelino et al. 2019, doi 10.2337/dci19-0028.
    """
    values = _present(glucose_mg_dl)
    return _share_pct(values > threshold_mg_dl)


@dataclass(frozen=True, slots=True)
class CgmSummary:
    """The consensus CGM metrics of one set of readings (see the functions of the same names)."""

    n_readings: int
    mean_mg_dl: float
    sd_mg_dl: float
    cv_pct: float
    gmi_pct: float
    time_in_range_70_180_pct: float
    time_below_70_pct: float
    time_below_54_pct: float
    time_above_180_pct: float
    time_above_250_pct: float


def summarize_cgm(glucose_mg_dl: npt.ArrayLike) -> CgmSummary:
    """All core consensus metrics at once, with the default thresholds; n_readings counts non-NaN readings.

    Source: Battelino et al. 2019, doi 10.2337/dci19-0028 (metric list); formulas as in the functions above.
    """
    values = _present(glucose_mg_dl)
    return CgmSummary(
        n_readings=int(values.size),
        mean_mg_dl=mean_glucose_mg_dl(values),
        sd_mg_dl=sd_glucose_mg_dl(values),
        cv_pct=cv_pct(values),
        gmi_pct=gmi_pct(values),
        time_in_range_70_180_pct=time_in_range_pct(values),
        time_below_70_pct=time_below_pct(values, threshold_mg_dl=TBR_LEVEL_1_MG_DL),
        time_below_54_pct=time_below_pct(values, threshold_mg_dl=TBR_LEVEL_2_MG_DL),
        time_above_180_pct=time_above_pct(values, threshold_mg_dl=TAR_LEVEL_1_MG_DL),
        time_above_250_pct=time_above_pct(values, threshold_mg_dl=TAR_LEVEL_2_MG_DL),
    )
