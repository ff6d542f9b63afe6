"""Shapes of the physiological signals the simulator adds up. Pure functions of time, vectorised with numpy.

Times are minutes (float); glucose is mg/dL. The shapes are plausible, not a clinical model.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from schemas.events import Trend

FloatArray = npt.NDArray[np.float64]

#: ADAG regression (Nathan et al. 2008, doi:10.2337/dc08-0545): estimated average glucose = 28.7 × A1c − 46.7.
ADAG_SLOPE_MG_DL_PER_PCT = 28.7
ADAG_INTERCEPT_MG_DL = 46.7

#: ∫ meal_shape dτ = e²/4 × peak time (the shape below is x² e^{2(1−x)}, x = τ / peak).
MEAL_SHAPE_AREA_PER_PEAK_MIN = float(np.e**2 / 4)

#: After exercise the glucose-lowering effect fades with this time constant.
EXERCISE_DECAY_MIN = 60.0


def mean_glucose_mg_dl_for_hba1c(hba1c_pct: float) -> float:
    """ADAG: the mean glucose an HbA1c corresponds to."""
    return ADAG_SLOPE_MG_DL_PER_PCT * hba1c_pct - ADAG_INTERCEPT_MG_DL


def hba1c_pct_for_mean_glucose(mean_glucose_mg_dl: float) -> float:
    """ADAG inverted: the HbA1c a mean glucose leads to."""
    return (mean_glucose_mg_dl + ADAG_INTERCEPT_MG_DL) / ADAG_SLOPE_MG_DL_PER_PCT


def meal_shape(minutes_since_meal: FloatArray, peak_min: float) -> FloatArray:
    """Rise after a meal, 1 at `peak_min`, 0.35 at 2.4 × peak and under 0.1 after ~3.5 × peak (≈ 3 h)."""
    x = np.clip(minutes_since_meal, 0.0, None) / peak_min
    return np.asarray(x**2 * np.exp(2.0 * (1.0 - x)), dtype=np.float64)


def exercise_shape(minutes_since_start: FloatArray, duration_min: float) -> FloatArray:
    """Lowering effect of a session: grows to 1 over the session, then fades (time constant 1 h)."""
    t = np.asarray(minutes_since_start, dtype=np.float64)
    during = np.clip(t / duration_min, 0.0, 1.0)
    after = np.exp(-np.clip(t - duration_min, 0.0, None) / EXERCISE_DECAY_MIN)
    return np.asarray(np.where(t < duration_min, during, after) * (t >= 0), dtype=np.float64)


def bump(x: FloatArray, centre: float, width: float) -> FloatArray:
    """Gaussian bump, 1 at `centre` (dawn phenomenon, night-time lows)."""
    return np.asarray(np.exp(-0.5 * ((x - centre) / width) ** 2), dtype=np.float64)


def trend_for_rate(rate_mg_dl_per_min: float) -> Trend:
    """CGM trend arrow for a rate of change (Dexcom's 1/2/3 mg/dL per minute steps)."""
    rate = rate_mg_dl_per_min
    if rate > 3.0:
        return Trend.DOUBLE_UP
    if rate > 2.0:
        return Trend.SINGLE_UP
    if rate > 1.0:
        return Trend.FORTY_FIVE_UP
    if rate >= -1.0:
        return Trend.FLAT
    if rate >= -2.0:
        return Trend.FORTY_FIVE_DOWN
    if rate >= -3.0:
        return Trend.SINGLE_DOWN
    return Trend.DOUBLE_DOWN
