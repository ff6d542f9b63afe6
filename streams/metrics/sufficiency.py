"""CGM data sufficiency: how much of the expected readings are present, and the consensus >= 70 % / 14 days flag.

Two ways to count, both from iglu 4.3 ``active_percent``:
- :func:`cgm_active_pct` ("automatic" range): over the span from the first to the last reading, the share of
  expected grid slots not lost to gaps (gaps are intervals longer than one sampling interval).
- :func:`window_coverage_pct` ("manual" range): readings inside a fixed window divided by the readings the
  window should hold at the sampling interval. This is the one the sufficiency flag uses, because the
  consensus asks for 70 % of a fixed 14-day period, not of whatever span happens to be recorded.
Source: Battelino et al. 2019, Diabetes Care 42:1593 (>= 70 % of 14 days), doi 10.2337/dci19-0028.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from streams.metrics.inputs import (
    SECONDS_PER_DAY,
    SECONDS_PER_MINUTE,
    Timestamp,
    TimestampsInput,
    epoch_seconds,
    require_percent,
    require_positive,
)

DEFAULT_INTERVAL_MIN = 5.0
SUFFICIENCY_WINDOW_DAYS = 14.0
SUFFICIENCY_MIN_COVERAGE_PCT = 70.0
MINUTES_PER_DAY = 1440.0
PERCENT = 100.0


def cgm_active_pct(timestamps: TimestampsInput, *, interval_min: float | None = DEFAULT_INTERVAL_MIN) -> float:
    """Share of the recorded span, %, during which the CGM delivered readings (iglu "automatic" range).

    Let d be the interval (min), the gaps the steps between consecutive readings whose rounded length
    exceeds d, and span the minutes from first to last reading:
    expected = round(round(span) / d) + 1; missing = round((sum of gap minutes - n_gaps x d) / d);
    active % = 100 x (expected - missing) / expected. Rounding is half-to-even, like R's ``round``.
    ``interval_min=None`` estimates d as the rounded median step, as iglu does by default.
    Pass only timestamps of readings that carry a value. NaN for no readings.
    Raises ValueError for a non-positive interval, or for interval_min=None with fewer than two readings.
    Source: iglu 4.3 ``active_percent`` (range_type = "automatic"); Danne et al. 2017, doi 10.2337/dc17-1600.
    """
    seconds = np.sort(epoch_seconds(timestamps))
    if seconds.size == 0:
        return math.nan
    steps_min = np.diff(seconds) / SECONDS_PER_MINUTE
    if interval_min is None:
        if steps_min.size == 0:
            raise ValueError("interval_min: cannot be estimated from fewer than two readings; pass it")
        interval = float(np.round(np.median(steps_min)))
        if interval <= 0:
            raise ValueError("interval_min: estimated as 0 (duplicate timestamps?); pass it")
    else:
        interval = require_positive(interval_min, "interval_min")
    span_min = (seconds[-1] - seconds[0]) / SECONDS_PER_MINUTE
    expected = float(np.round(np.round(span_min) / interval)) + 1.0
    gap_steps = steps_min[np.round(steps_min) > interval]
    missing = float(np.round((gap_steps.sum() - gap_steps.size * interval) / interval))
    return (expected - missing) / expected * PERCENT


def window_coverage_pct(
    timestamps: TimestampsInput,
    *,
    window_end: Timestamp | None = None,
    window_days: float = SUFFICIENCY_WINDOW_DAYS,
    interval_min: float = DEFAULT_INTERVAL_MIN,
) -> float:
    """Readings present in the window as % of those expected: 100 x n / (window_days x 1440 / interval_min).

    The window is [window_end - window_days, window_end], both ends inclusive (lubridate ``%within%``);
    ``window_end`` defaults to the latest reading. Unlike iglu, n counts distinct timestamps (a re-sent
    reading does not count twice) and the result is capped at 100 %, since the closed window can hold one
    reading more than expected. NaN when there are no readings at all. Pass only readings that carry a value.
    Source: iglu 4.3 ``active_percent`` (range_type = "manual"); Battelino et al. 2019, doi 10.2337/dci19-0028.
    """
    interval = require_positive(interval_min, "interval_min")
    days = require_positive(window_days, "window_days")
    seconds = epoch_seconds(timestamps)
    if seconds.size == 0:
        return math.nan
    end_s = float(seconds.max()) if window_end is None else float(epoch_seconds([window_end], field="window_end")[0])
    start_s = end_s - days * SECONDS_PER_DAY
    inside = np.unique(seconds[(seconds >= start_s) & (seconds <= end_s)])
    expected = days * MINUTES_PER_DAY / interval
    return min(float(inside.size) / expected * PERCENT, PERCENT)


def is_data_sufficient(coverage_pct: float, *, min_coverage_pct: float = SUFFICIENCY_MIN_COVERAGE_PCT) -> bool:
    """True when coverage_pct >= min_coverage_pct (default 70 %). NaN coverage (no data) is insufficient.

    Source: Battelino et al. 2019 (">= 70 % of data from 14 days"), doi 10.2337/dci19-0028.
    """
    minimum = require_percent(min_coverage_pct, "min_coverage_pct")
    return not math.isnan(coverage_pct) and coverage_pct >= minimum


@dataclass(frozen=True, slots=True)
class DataSufficiency:
    """Coverage of a fixed window and whether it meets the consensus minimum."""

    coverage_pct: float
    window_days: float
    sufficient: bool


def assess_data_sufficiency(
    timestamps: TimestampsInput,
    *,
    window_end: Timestamp | None = None,
    window_days: float = SUFFICIENCY_WINDOW_DAYS,
    interval_min: float = DEFAULT_INTERVAL_MIN,
    min_coverage_pct: float = SUFFICIENCY_MIN_COVERAGE_PCT,
) -> DataSufficiency:
    """Coverage of the window ending at window_end (see :func:`window_coverage_pct`) and the >= 70 % flag.

    Source: Battelino et al. 2019 (>= 70 % of 14 days of CGM data), doi 10.2337/dci19-0028.
    """
    coverage = window_coverage_pct(
        timestamps, window_end=window_end, window_days=window_days, interval_min=interval_min
    )
    return DataSufficiency(
        coverage_pct=coverage,
        window_days=float(window_days),
        sufficient=is_data_sufficient(coverage, min_coverage_pct=min_coverage_pct),
    )
