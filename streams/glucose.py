"""The glucose summary of one window of CGM readings, shared by the stream worker and `vitalstream metrics`.

A window of `window_days` ending at `end` holds the readings with end - window_days < t <= end. Every
number comes from streams.metrics; this module only selects the readings and gathers the results.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from schemas.events import GlucoseKind, GlucoseReading
from streams.metrics import assess_data_sufficiency, gri_result, hbgi, lbgi, summarize_cgm
from streams.metrics.inputs import SECONDS_PER_DAY

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class GlucoseSummary:
    """Consensus CGM metrics of one window. NaN where a metric is undefined (e.g. SD of one reading)."""

    n: int
    mean_mg_dl: float
    sd_mg_dl: float
    cv_pct: float
    gmi_pct: float
    tir_pct: float
    tbr70_pct: float
    tbr54_pct: float
    tar180_pct: float
    tar250_pct: float
    lbgi: float
    hbgi: float
    gri: float
    gri_zone: str | None
    #: Readings present as % of those a 5-minute CGM gives in the window; NaN when window_days is None.
    coverage_pct: float
    sufficient: bool

    def as_report(self) -> dict[str, Any]:
        """The `vitalstream metrics glucose` shape: short names, None for NaN."""
        values = asdict(self)
        names = {
            "n": "n", "mean_mg_dl": "mean", "sd_mg_dl": "sd", "cv_pct": "cv", "gmi_pct": "gmi", "tir_pct": "tir",
            "tbr70_pct": "tbr70", "tbr54_pct": "tbr54", "tar180_pct": "tar180", "tar250_pct": "tar250",
            "lbgi": "lbgi", "hbgi": "hbgi", "gri": "gri", "gri_zone": "gri_zone",
        }
        return {short: _none_for_nan(values[name]) for name, short in names.items()}


def _none_for_nan(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def select_window(epoch_s: FloatArray, mg_dl: FloatArray, *, window_days: float | None,
                  end_epoch_s: float | None = None) -> tuple[FloatArray, FloatArray]:
    """The readings in (end - window_days, end]; end defaults to the newest reading; None days: all readings."""
    if epoch_s.size == 0 or window_days is None:
        return epoch_s, mg_dl
    end = float(epoch_s.max()) if end_epoch_s is None else end_epoch_s
    inside = (epoch_s > end - window_days * SECONDS_PER_DAY) & (epoch_s <= end)
    return epoch_s[inside], mg_dl[inside]


def summarize_window(epoch_s: FloatArray, mg_dl: FloatArray, *, window_days: float | None,
                     end_epoch_s: float | None = None) -> GlucoseSummary:
    """Summary of the readings in the window (see select_window); `sufficient` is the >= 70 % coverage rule."""
    seconds, values = select_window(epoch_s, mg_dl, window_days=window_days, end_epoch_s=end_epoch_s)
    cgm = summarize_cgm(values)
    risk = gri_result(values)
    if window_days is None or seconds.size == 0:
        coverage, sufficient = math.nan, False
    else:
        end = float(seconds.max()) if end_epoch_s is None else end_epoch_s
        sufficiency = assess_data_sufficiency(seconds, window_end=end, window_days=window_days)
        coverage, sufficient = sufficiency.coverage_pct, sufficiency.sufficient
    return GlucoseSummary(
        n=cgm.n_readings,
        mean_mg_dl=cgm.mean_mg_dl,
        sd_mg_dl=cgm.sd_mg_dl,
        cv_pct=cgm.cv_pct,
        gmi_pct=cgm.gmi_pct,
        tir_pct=cgm.time_in_range_70_180_pct,
        tbr70_pct=cgm.time_below_70_pct,
        tbr54_pct=cgm.time_below_54_pct,
        tar180_pct=cgm.time_above_180_pct,
        tar250_pct=cgm.time_above_250_pct,
        lbgi=lbgi(values),
        hbgi=hbgi(values),
        gri=risk.gri if risk is not None else math.nan,
        gri_zone=risk.zone.value if risk is not None else None,
        coverage_pct=coverage,
        sufficient=sufficient,
    )


def summarize_readings(readings: Iterable[GlucoseReading], *, window_days: float | None = None
                       ) -> dict[str, GlucoseSummary]:
    """Per user, the summary of their CGM readings in the window ending at their newest reading.

    Readings are taken once per event id, as the worker's state holds them (a re-sent reading counts once).
    """
    by_user: dict[str, dict[str, tuple[float, float]]] = {}
    for reading in readings:
        if reading.kind is not GlucoseKind.CGM:
            continue
        by_user.setdefault(reading.user_id, {})[str(reading.event_id)] = (
            reading.occurred_at.timestamp(), reading.glucose_mg_dl)
    summaries = {}
    for user_id, points in by_user.items():
        ordered = sorted((t, event_id, mg_dl) for event_id, (t, mg_dl) in points.items())
        epoch_s = np.array([p[0] for p in ordered], dtype=np.float64)
        mg_dl = np.array([p[2] for p in ordered], dtype=np.float64)
        summaries[user_id] = summarize_window(epoch_s, mg_dl, window_days=window_days)
    return summaries
