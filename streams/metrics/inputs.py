"""Input normalisation shared by the metric modules: glucose arrays and reading timestamps.

Glucose arrives in mg/dL as any 1-D array-like; NaN marks a missing reading and is kept here (each metric
documents how it treats NaN). Timestamps are timezone-aware datetimes or epoch seconds; naive datetimes are
refused because their instant is ambiguous.
Source: none (plumbing); unit conventions follow Battelino et al. 2019, doi 10.2337/dci19-0028.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Timestamp = datetime | float | int
TimestampsInput = Sequence[Timestamp] | npt.NDArray[np.float64] | npt.NDArray[np.int64]

SECONDS_PER_MINUTE = 60.0
SECONDS_PER_DAY = 86_400.0


def glucose_array(glucose_mg_dl: npt.ArrayLike, *, field: str = "glucose_mg_dl") -> FloatArray:
    """Return readings as a 1-D float64 array in mg/dL, NaN kept as "missing".

    Raises ValueError naming ``field`` for a non-1-D input, an infinite value, or a reading <= 0 mg/dL
    (no sensor reports those; they would also break the log in the risk indices).
    """
    try:
        values = np.asarray(glucose_mg_dl, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field}: expected numbers in mg/dL ({exc})") from exc
    if values.ndim != 1:
        raise ValueError(f"{field}: expected a 1-D sequence of readings, got shape {values.shape}")
    present = values[~np.isnan(values)]
    if np.isinf(present).any():
        raise ValueError(f"{field}: readings must be finite mg/dL values (NaN marks a missing one)")
    if (present <= 0).any():
        raise ValueError(f"{field}: readings must be > 0 mg/dL, got {float(present.min())}")
    return values


def epoch_seconds(timestamps: TimestampsInput, *, field: str = "timestamps") -> FloatArray:
    """Return timestamps as float epoch seconds (UTC), in input order.

    Accepts timezone-aware datetimes or numbers (epoch seconds). Raises ValueError naming ``field`` (and the
    index) for a naive datetime or a non-finite number, TypeError for anything else.
    """
    if isinstance(timestamps, np.ndarray):
        if timestamps.ndim != 1:
            raise ValueError(f"{field}: expected a 1-D sequence, got shape {timestamps.shape}")
        out = timestamps.astype(np.float64)
    else:
        out = np.empty(len(timestamps), dtype=np.float64)
        for index, stamp in enumerate(timestamps):
            out[index] = _one_epoch_second(stamp, f"{field}[{index}]")
    if not np.isfinite(out).all():
        raise ValueError(f"{field}: timestamps must be finite epoch seconds")
    return out


def _one_epoch_second(stamp: object, where: str) -> float:
    if isinstance(stamp, datetime):
        if stamp.tzinfo is None or stamp.utcoffset() is None:
            raise ValueError(f"{where}: naive datetime {stamp.isoformat()}; give a timezone-aware one")
        return stamp.timestamp()
    # bool is an int subclass; a True timestamp is always a bug upstream.
    if isinstance(stamp, bool) or not isinstance(stamp, int | float | np.integer | np.floating):
        raise TypeError(f"{where}: expected a timezone-aware datetime or epoch seconds, got {stamp!r}")
    return float(stamp)


def sorted_readings(
    timestamps: TimestampsInput,
    glucose_mg_dl: npt.ArrayLike,
) -> tuple[FloatArray, FloatArray]:
    """Pair timestamps with glucose, drop missing (NaN) readings, and sort by time (stable).

    Raises ValueError when the two inputs differ in length.
    """
    seconds = epoch_seconds(timestamps)
    values = glucose_array(glucose_mg_dl)
    if seconds.shape != values.shape:
        raise ValueError(
            f"timestamps and glucose_mg_dl must have the same length, got {seconds.size} and {values.size}"
        )
    present = ~np.isnan(values)
    seconds, values = seconds[present], values[present]
    order = np.argsort(seconds, kind="stable")
    return seconds[order], values[order]


def require_positive(value: float, field: str) -> float:
    """Return ``value`` as float if it is a finite number > 0, else raise ValueError naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{field}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{field}: must be a finite number > 0, got {value!r}")
    return number


def require_percent(value: float, field: str) -> float:
    """Return ``value`` as float if it is a finite percentage in [0, 100], else raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{field}: expected a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or not 0.0 <= number <= 100.0:
        raise ValueError(f"{field}: must be a percentage in [0, 100], got {value!r}")
    return number
