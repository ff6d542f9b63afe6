"""Rankings ("top n %"): the registry of rankable metrics, and a per-metric snapshot that answers in O(log n).

Population: every user whose current value of the metric (user_metrics_current, written by the stream worker)
is marked sufficient; users without enough data are left out and told so.

Definitions, for a user with value v in a population of n ordered best-last (ascending when higher is
better, descending when lower is better):
- percentile = 100 × (users strictly worse than v) / (n − 1): exactly SQL's
  `100 * percent_rank() OVER (ORDER BY value [DESC])`, ties sharing the lowest rank; 0 when n = 1.
- top_percent = 100 × (users doing at least as well as v, the user included) / n: "you are in the top 8 %".

Speed: a snapshot is every sufficient value of one metric, sorted, in a numpy array (8 bytes a user: 8 MB per
metric at a million users), loaded with one query; a request is a primary-key lookup of the user's own value
plus two binary searches. Staleness bound: a snapshot is served for `max_age_s` after it was loaded, then
reloaded in the background while the old one keeps answering, so other users' values are at most
max_age_s + one load (about half a second at a million users: bench/README.md) old. The user's own value is
always read fresh; when it is not in the snapshot yet (e.g. just became sufficient), it counts as one more user.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, select, text

from storage.tables import user_metrics_current

log = logging.getLogger(__name__)

#: How long a snapshot answers before it is reloaded.
DEFAULT_MAX_AGE_S = 60.0


class Better(StrEnum):
    HIGHER = "higher"
    LOWER = "lower"


class RankedMetric(StrEnum):
    """Names of the rankable metrics, as the API takes them."""

    TIME_IN_RANGE = "time_in_range"
    TIME_BELOW_70 = "time_below_70"
    TIME_BELOW_54 = "time_below_54"
    TIME_ABOVE_180 = "time_above_180"
    TIME_ABOVE_250 = "time_above_250"
    MEAN_GLUCOSE = "mean_glucose"
    GMI = "gmi"
    CV = "cv"
    GRI = "gri"
    HYPO_LEVEL2_EPISODES = "hypo_level2_episodes"
    MEAN_SYSTOLIC = "mean_systolic"
    MEAN_DIASTOLIC = "mean_diastolic"
    WEEKLY_EXERCISE_MINUTES = "weekly_exercise_minutes"
    HBA1C = "hba1c"


@dataclass(frozen=True, slots=True)
class Rankable:
    """A metric users are ranked by. `stored`: window → its name in user_metrics_current (the worker's names);
    the first window is the default."""

    name: RankedMetric
    better: Better
    unit: str
    description: str
    stored: Mapping[str, str]

    @property
    def default_window(self) -> str:
        return next(iter(self.stored))


def _rankable(name: RankedMetric, better: Better, unit: str, description: str, **stored: str) -> Rankable:
    # Windows like "14d" are not identifiers; keyword names carry a leading "w".
    return Rankable(name, better, unit, description, {key.removeprefix("w"): value for key, value in stored.items()})


_M = RankedMetric
#: Every rankable metric, in one place. Lower is better for mean glucose and GMI here, as for the population
#: this serves (diabetes); the time-below-range metrics catch the other end. The worker's `risk_tier_rank` is
#: left out on purpose: four values, and a tier is a clinical flag, not something to compete on.
RANKABLE: dict[RankedMetric, Rankable] = {r.name: r for r in (
    _rankable(_M.TIME_IN_RANGE, Better.HIGHER, "%", "Share of CGM readings within 70-180 mg/dL",
              w14d="time_in_range_14d_pct", w24h="time_in_range_24h_pct"),
    _rankable(_M.TIME_BELOW_70, Better.LOWER, "%", "Share of CGM readings below 70 mg/dL",
              w14d="time_below_70_14d_pct"),
    _rankable(_M.TIME_BELOW_54, Better.LOWER, "%", "Share of CGM readings below 54 mg/dL",
              w14d="time_below_54_14d_pct"),
    _rankable(_M.TIME_ABOVE_180, Better.LOWER, "%", "Share of CGM readings above 180 mg/dL",
              w14d="time_above_180_14d_pct"),
    _rankable(_M.TIME_ABOVE_250, Better.LOWER, "%", "Share of CGM readings above 250 mg/dL",
              w14d="time_above_250_14d_pct"),
    _rankable(_M.MEAN_GLUCOSE, Better.LOWER, "mg/dL", "Mean glucose of the CGM readings",
              w14d="mean_glucose_14d_mg_dl", w24h="mean_glucose_24h_mg_dl"),
    _rankable(_M.GMI, Better.LOWER, "%", "Glucose management indicator (estimated HbA1c from mean glucose)",
              w14d="gmi_14d_pct"),
    _rankable(_M.CV, Better.LOWER, "%", "Coefficient of variation of glucose (variability)", w14d="cv_14d_pct"),
    _rankable(_M.GRI, Better.LOWER, "", "Glycaemia risk index (0-100)", w14d="gri_14d"),
    _rankable(_M.HYPO_LEVEL2_EPISODES, Better.LOWER, "episodes", "Level 2 hypoglycaemia episodes (< 54 mg/dL)",
              w14d="hypo_level2_episodes_14d"),
    _rankable(_M.MEAN_SYSTOLIC, Better.LOWER, "mmHg", "Mean systolic blood pressure", w7d="mean_systolic_7d_mmhg"),
    _rankable(_M.MEAN_DIASTOLIC, Better.LOWER, "mmHg", "Mean diastolic blood pressure",
              w7d="mean_diastolic_7d_mmhg"),
    _rankable(_M.WEEKLY_EXERCISE_MINUTES, Better.HIGHER, "min", "Minutes of exercise in the last 7 days",
              w7d="weekly_exercise_minutes"),
    _rankable(_M.HBA1C, Better.LOWER, "%", "Latest HbA1c (NGSP %)", wlatest="hba1c_pct"),
)}
if set(RANKABLE) != set(RankedMetric):
    raise RuntimeError(f"RANKABLE lacks {set(RankedMetric) - set(RANKABLE)}: every RankedMetric needs an entry")


@dataclass(frozen=True, slots=True)
class Rank:
    percentile: float
    top_percent: float
    population: int


@dataclass(frozen=True)
class Distribution:
    """Sorted sufficient values of one stored metric, as loaded at `loaded_at`."""

    metric: str
    values: npt.NDArray[np.float64]
    loaded_at: datetime
    loaded_monotonic_s: float = field(default=0.0, compare=False)

    def rank(self, value: float, better: Better) -> Rank:
        """Where `value` stands (module doc); a value not in the snapshot counts as one more user."""
        values = self.values
        below = int(np.searchsorted(values, value, side="left"))
        up_to = int(np.searchsorted(values, value, side="right"))
        extra = 0 if up_to > below else 1
        population = len(values) + extra
        if better is Better.HIGHER:
            worse, at_least_as_good = below, len(values) - below + extra
        else:
            worse, at_least_as_good = len(values) - up_to, up_to + extra
        percentile = 0.0 if population == 1 else 100.0 * worse / (population - 1)
        return Rank(percentile=percentile, top_percent=100.0 * at_least_as_good / population, population=population)


# One value, not a million rows: the server packs the column into a bytea of big-endian float8s (float8send),
# which arrives as one message and is read by numpy without a Python loop (2-3 times faster than COPY, whose
# rows psycopg hands over one by one).
_PACKED_VALUES = text("SELECT string_agg(float8send(value), ''::bytea) FROM user_metrics_current "
                      "WHERE metric = :metric AND sufficient")
_FLOAT8 = np.dtype(">f8")


def unpack_float8s(packed: bytes | None) -> npt.NDArray[np.float64]:
    """Big-endian float8s (string_agg of float8send; NULL when there are none) as a native-endian array."""
    data = packed or b""
    if len(data) % _FLOAT8.itemsize:
        raise ValueError(f"packed float8 values must be a multiple of 8 bytes long, got {len(data)}")
    return np.frombuffer(data, dtype=_FLOAT8).astype(np.float64)


def load_values(connection: Connection, metric: str) -> npt.NDArray[np.float64]:
    """Every sufficient value of a stored metric, sorted ascending."""
    values = unpack_float8s(connection.execute(_PACKED_VALUES, {"metric": metric}).scalar_one())
    values.sort()
    return values


@dataclass(frozen=True, slots=True)
class CurrentValue:
    value: float
    sufficient: bool
    as_of: datetime


def current_value(connection: Connection, user_id: str, metric: str) -> CurrentValue | None:
    """The user's current value of a stored metric, or None."""
    row = connection.execute(
        select(user_metrics_current.c.value, user_metrics_current.c.sufficient, user_metrics_current.c.as_of)
        .where(user_metrics_current.c.user_id == user_id, user_metrics_current.c.metric == metric)).first()
    return None if row is None else CurrentValue(value=row.value, sufficient=row.sufficient, as_of=row.as_of)


class Distributions:
    """Per-metric snapshots, loaded on first use and reloaded in the background once older than max_age_s.

    Thread-safe: the API's sync handlers call `get` from a thread pool.
    """

    def __init__(self, engine: Engine, max_age_s: float = DEFAULT_MAX_AGE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._engine = engine
        self.max_age_s = max_age_s
        self._clock = clock
        self._snapshots: dict[str, Distribution] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, metric: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(metric, threading.Lock())

    def _load(self, metric: str) -> Distribution:
        started = self._clock()
        with self._engine.connect() as connection:
            values = load_values(connection, metric)
        snapshot = Distribution(metric, values, datetime.now(UTC), self._clock())
        self._snapshots[metric] = snapshot
        log.info("ranking snapshot loaded", extra={"metric": metric, "users": len(values),
                                                   "seconds": round(self._clock() - started, 3)})
        return snapshot

    def _reload_in_background(self, metric: str, lock: threading.Lock) -> None:
        def reload() -> None:
            try:
                self._load(metric)
            except Exception:  # the stale snapshot keeps answering; the next request tries again
                log.exception("reloading a ranking snapshot failed", extra={"metric": metric})
            finally:
                lock.release()

        threading.Thread(target=reload, name=f"rankings-{metric}", daemon=True).start()

    def get(self, metric: str) -> Distribution:
        """The metric's snapshot: loaded now on first use, else the current one (reloading it when stale)."""
        snapshot = self._snapshots.get(metric)
        if snapshot is not None and self._clock() - snapshot.loaded_monotonic_s < self.max_age_s:
            return snapshot
        lock = self._lock(metric)
        if snapshot is not None:
            if lock.acquire(blocking=False):
                self._reload_in_background(metric, lock)
            return snapshot
        with lock:
            snapshot = self._snapshots.get(metric)
            return snapshot if snapshot is not None else self._load(metric)

    def refresh(self, metric: str) -> Distribution:
        """Load the metric now, whatever the age of its snapshot (tests, benchmarks)."""
        with self._lock(metric):
            return self._load(metric)
