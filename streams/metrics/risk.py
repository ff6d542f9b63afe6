"""Kovatchev's Low and High Blood Glucose Indices (LBGI, HBGI), computed exactly as iglu 4.3 does.

The symmetrised glucose scale is f(G) = ln(G)^1.084 - 5.381 (G in mg/dL); it is zero near 112.5 mg/dL.
Each reading's risk is 10 x (1.509 f)^2 = 22.77 f^2, counted as low risk when f < 0 (and G < 112.5) and as
high risk when f > 0 (and G >= 112.5). LBGI and HBGI are the means of those risks over all non-NaN readings.
iglu folds 10 x 1.509^2 = 22.7708 into the rounded constant 22.77, and so do we: the results then equal
iglu's to floating-point precision (the rounding changes them by 0.004 %).
Source: Kovatchev et al. 2006, Diabetes Care 29:2433, doi 10.2337/dc06-1085 (iglu ``lbgi``/``hbgi``).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from streams.metrics.inputs import FloatArray, glucose_array

RISK_EXPONENT = 1.084
RISK_OFFSET = 5.381
# 10 x 1.509^2, rounded as iglu (and Kovatchev's papers) write it.
RISK_SCALE = 22.77
# The scale's zero, where iglu splits readings between the low and the high index.
RISK_SPLIT_MG_DL = 112.5


def _symmetrised(values: FloatArray) -> FloatArray:
    result: FloatArray = np.log(values) ** RISK_EXPONENT - RISK_OFFSET
    return result


def _present(glucose_mg_dl: npt.ArrayLike) -> FloatArray:
    values = glucose_array(glucose_mg_dl)
    return values[~np.isnan(values)]


def lbgi(glucose_mg_dl: npt.ArrayLike) -> float:
    """Low Blood Glucose Index (unitless): (1/n) x sum over readings of 22.77 x min(f(G), 0)^2, G < 112.5 mg/dL.

    f(G) = ln(G)^1.084 - 5.381 with G in mg/dL; n counts all non-NaN readings. NaN when none remain.
    Source: Kovatchev et al. 2006, doi 10.2337/dc06-1085; matches iglu 4.3 ``lbgi`` (R/lbgi.R).
    """
    values = _present(glucose_mg_dl)
    if values.size == 0:
        return math.nan
    low = np.minimum(_symmetrised(values), 0.0)
    low = np.where(values < RISK_SPLIT_MG_DL, low, 0.0)
    return float(RISK_SCALE * np.sum(low**2) / values.size)


def hbgi(glucose_mg_dl: npt.ArrayLike) -> float:
    """High Blood Glucose Index (unitless): (1/n) x sum of 22.77 x max(f(G), 0)^2 over readings G >= 112.5 mg/dL.

    f(G) = ln(G)^1.084 - 5.381 with G in mg/dL; n counts all non-NaN readings. NaN when none remain.
    Source: Kovatchev et al. 2006, doi 10.2337/dc06-1085; matches iglu 4.3 ``hbgi`` (R/hbgi.R).
    """
    values = _present(glucose_mg_dl)
    if values.size == 0:
        return math.nan
    high = np.maximum(_symmetrised(values), 0.0)
    high = np.where(values >= RISK_SPLIT_MG_DL, high, 0.0)
    return float(RISK_SCALE * np.sum(high**2) / values.size)
