"""CGM hypo- and hyperglycaemia episodes (events) as the 2023 international consensus defines them.

Definitions (Battelino et al. 2023, Table: CGM-based definitions of events); "consecutive" = no data gap:
- Level 1 hypoglycaemia: begins with >= 15 consecutive min < 70 mg/dL; ends with >= 15 consecutive min >= 70.
- Level 2 hypoglycaemia: begins with >= 15 consecutive min < 54 mg/dL; ends with >= 15 consecutive min >= 54.
- Extended hypoglycaemia: begins with > 120 consecutive min < 70 mg/dL (the level 1 threshold, not 54);
  ends with >= 15 consecutive min >= 70.
- Level 1 hyperglycaemia: begins with >= 15 consecutive min > 180 mg/dL; ends with >= 15 consecutive min <= 180.
- Level 2 hyperglycaemia: begins with >= 15 consecutive min > 250 mg/dL; ends with >= 15 consecutive min <= 250.
- Extended hyperglycaemia: begins when > 250 mg/dL for >= 90 cumulative min within a 120-min period;
  ends with >= 15 consecutive min <= 180.
Level 2 episodes are also level 1 episodes (iglu's convention; the consensus is ambiguous on exclusivity).
iglu 4.3 ``episode_calculation`` and the AGATA toolbox read the extended-hypoglycaemia rule the same way.

Time model (documented choices, not from the paper):
- Each reading stands for one sampling slot of ``interval_min`` (default 5 min). A run of readings from t_a to
  t_b lasts (round((t_b - t_a) / interval) + 1) x interval minutes, so 3 readings 5 min apart are exactly
  15 min and a few seconds of sensor clock jitter do not matter. Gaps up to ``max_gap_min`` inside a run are
  bridged (the missing slots count with the run, as iglu's linear interpolation would).
- A step longer than ``max_gap_min`` (default 2 x interval) breaks continuity: no run spans it. An episode
  still open at a gap ends there (``ended_by = GAP``); one still open when readings stop is ``DATA_END``
  (for a live stream: possibly ongoing). Both end after the last in-condition reading.
- An episode spans its first qualifying reading to the last in-condition reading before the recovery run;
  short excursions out of condition inside it (shorter than the end duration) do not end it.
  end = start + duration, duration counted in slots as above (a regular trace gives iglu's n x dt0).
- Missing (NaN) readings are dropped first. Extended hyperglycaemia counts cumulative time in readings > 250
  (one slot each) within the window: missing readings never count towards it.
Source: Battelino et al. 2023, Lancet Diabetes Endocrinol 11:42, doi 10.1016/S2213-8587(22)00319-9.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from streams.metrics.inputs import (
    SECONDS_PER_DAY,
    SECONDS_PER_MINUTE,
    FloatArray,
    Timestamp,
    TimestampsInput,
    epoch_seconds,
    require_positive,
    sorted_readings,
)

DEFAULT_INTERVAL_MIN = 5.0
# Steps longer than this many sampling intervals break continuity.
DEFAULT_MAX_GAP_INTERVALS = 2.0

HYPO_LEVEL_1_MG_DL = 70.0
HYPO_LEVEL_2_MG_DL = 54.0
HYPER_LEVEL_1_MG_DL = 180.0
HYPER_LEVEL_2_MG_DL = 250.0
EVENT_MIN_DURATION_MIN = 15.0
EVENT_END_DURATION_MIN = 15.0
EXTENDED_HYPO_LONGER_THAN_MIN = 120.0
EXTENDED_HYPER_WINDOW_MIN = 120.0
EXTENDED_HYPER_CUMULATIVE_MIN = 90.0


class EpisodeKind(StrEnum):
    """Consensus event type (Battelino et al. 2023)."""

    HYPO_LEVEL_1 = "hypo_level_1"
    HYPO_LEVEL_2 = "hypo_level_2"
    HYPO_EXTENDED = "hypo_extended"
    HYPER_LEVEL_1 = "hyper_level_1"
    HYPER_LEVEL_2 = "hyper_level_2"
    HYPER_EXTENDED = "hyper_extended"

    @property
    def is_hypo(self) -> bool:
        return self.value.startswith("hypo")


class EpisodeEnd(StrEnum):
    """Why an episode ended."""

    RECOVERED = "recovered"  # the consensus end rule was met
    GAP = "gap"  # a data gap came before recovery was confirmed
    DATA_END = "data_end"  # readings stop before recovery was confirmed (live: maybe ongoing)


@dataclass(frozen=True, slots=True)
class Episode:
    """One event. ``extreme_mg_dl`` is the nadir of a hypo and the peak of a hyper episode."""

    kind: EpisodeKind
    start_epoch_s: float
    end_epoch_s: float
    duration_min: float
    extreme_mg_dl: float
    mean_mg_dl: float
    n_readings: int
    ended_by: EpisodeEnd


@dataclass(frozen=True, slots=True)
class EpisodeSummary:
    """Episodes starting in a window [start, end): count, durations (min) and rate per day of window."""

    count: int
    total_duration_min: float
    mean_duration_min: float | None
    episodes_per_day: float


@dataclass(frozen=True, slots=True)
class _Grid:
    seconds: FloatArray
    values: FloatArray
    interval_min: float
    segments: tuple[tuple[int, int], ...]  # [first, last] reading index of each gap-free stretch

    def slots_min(self, first: int, last: int) -> float:
        elapsed_min = float(self.seconds[last] - self.seconds[first]) / SECONDS_PER_MINUTE
        return (round(elapsed_min / self.interval_min) + 1) * self.interval_min


def _grid(
    timestamps: TimestampsInput,
    glucose_mg_dl: npt.ArrayLike,
    interval_min: float,
    max_gap_min: float | None,
) -> _Grid:
    interval = require_positive(interval_min, "interval_min")
    max_gap = DEFAULT_MAX_GAP_INTERVALS * interval if max_gap_min is None else max_gap_min
    max_gap = require_positive(max_gap, "max_gap_min")
    if max_gap < interval:
        raise ValueError(f"max_gap_min ({max_gap}) must be >= interval_min ({interval})")
    seconds, values = sorted_readings(timestamps, glucose_mg_dl)
    breaks = np.flatnonzero(np.diff(seconds) > max_gap * SECONDS_PER_MINUTE)
    firsts = [0, *(int(b) + 1 for b in breaks)]
    lasts = [*(int(b) for b in breaks), seconds.size - 1]
    segments = tuple(zip(firsts, lasts, strict=True)) if seconds.size else ()
    return _Grid(seconds, values, interval, segments)


# Given (grid, index, lowest index allowed), the index where an episode qualifying at this reading starts.
_StartRule = Callable[[_Grid, int, int], int | None]


def _scan(
    grid: _Grid,
    kind: EpisodeKind,
    continuing: npt.NDArray[np.bool_],
    starts_at: _StartRule,
    end_duration_min: float,
) -> list[Episode]:
    episodes: list[Episode] = []
    for segment_no, (first, last) in enumerate(grid.segments):
        truncated_by = EpisodeEnd.DATA_END if segment_no == len(grid.segments) - 1 else EpisodeEnd.GAP
        start: int | None = None
        last_in: int = first
        recovery_from: int | None = None
        floor = first  # readings before the last confirmed recovery cannot start a new episode
        for index in range(first, last + 1):
            if start is None:
                start = starts_at(grid, index, floor)
                last_in, recovery_from = index, None
                continue
            if continuing[index]:
                last_in, recovery_from = index, None
                continue
            if recovery_from is None:
                recovery_from = index
            if grid.slots_min(recovery_from, index) >= end_duration_min:
                episodes.append(_episode(grid, kind, start, last_in, EpisodeEnd.RECOVERED))
                start, floor = None, index + 1
        if start is not None:
            episodes.append(_episode(grid, kind, start, last_in, truncated_by))
    return episodes


def _episode(grid: _Grid, kind: EpisodeKind, first: int, last: int, ended_by: EpisodeEnd) -> Episode:
    values = grid.values[first : last + 1]
    duration_min = grid.slots_min(first, last)
    start_s = float(grid.seconds[first])
    return Episode(
        kind=kind,
        start_epoch_s=start_s,
        end_epoch_s=start_s + duration_min * SECONDS_PER_MINUTE,
        duration_min=duration_min,
        extreme_mg_dl=float(values.min() if kind.is_hypo else values.max()),
        mean_mg_dl=float(values.mean()),
        n_readings=int(values.size),
        ended_by=ended_by,
    )


def _run_start_rule(grid: _Grid, in_condition: npt.NDArray[np.bool_], qualifies: Callable[[float], bool]) -> _StartRule:
    """Start when the current run of in-condition readings has lasted long enough; it starts at the run."""
    run_first = np.arange(grid.values.size)
    for first, last in grid.segments:
        for index in range(first + 1, last + 1):
            if in_condition[index] and in_condition[index - 1]:
                run_first[index] = run_first[index - 1]

    def starts_at(grid_: _Grid, index: int, floor: int) -> int | None:
        if not in_condition[index]:
            return None
        first = max(int(run_first[index]), floor)
        return first if qualifies(grid_.slots_min(first, index)) else None

    return starts_at


def hypoglycaemia_episodes(
    timestamps: TimestampsInput,
    glucose_mg_dl: npt.ArrayLike,
    *,
    threshold_mg_dl: float = HYPO_LEVEL_1_MG_DL,
    min_duration_min: float = EVENT_MIN_DURATION_MIN,
    end_duration_min: float = EVENT_END_DURATION_MIN,
    kind: EpisodeKind = EpisodeKind.HYPO_LEVEL_1,
    interval_min: float = DEFAULT_INTERVAL_MIN,
    max_gap_min: float | None = None,
) -> list[Episode]:
    """Episodes starting with >= min_duration_min consecutive min of G < threshold; ending with
    >= end_duration_min consecutive min of G >= threshold. Defaults: level 1 (70 mg/dL, 15 min, 15 min);
    pass threshold_mg_dl=54, kind=HYPO_LEVEL_2 for level 2. Time model and NaN/gap handling: module doc.
    Source: Battelino et al. 2023, doi 10.1016/S2213-8587(22)00319-9.
    """
    grid = _grid(timestamps, glucose_mg_dl, interval_min, max_gap_min)
    below = grid.values < threshold_mg_dl
    minimum = require_positive(min_duration_min, "min_duration_min")
    rule = _run_start_rule(grid, below, lambda minutes: minutes >= minimum)
    return _scan(grid, kind, below, rule, require_positive(end_duration_min, "end_duration_min"))


def extended_hypoglycaemia_episodes(
    timestamps: TimestampsInput,
    glucose_mg_dl: npt.ArrayLike,
    *,
    threshold_mg_dl: float = HYPO_LEVEL_1_MG_DL,
    longer_than_min: float = EXTENDED_HYPO_LONGER_THAN_MIN,
    end_duration_min: float = EVENT_END_DURATION_MIN,
    interval_min: float = DEFAULT_INTERVAL_MIN,
    max_gap_min: float | None = None,
) -> list[Episode]:
    """Episodes starting with MORE than longer_than_min (120) consecutive min of G < threshold (70 mg/dL);
    ending with >= end_duration_min (15) consecutive min of G >= threshold. With 5-min readings that is
    25 readings (125 min), as iglu's ``120/dt0 + 1``. Time model and NaN/gap handling: module doc.
    Source: Battelino et al. 2023, doi 10.1016/S2213-8587(22)00319-9.
    """
    grid = _grid(timestamps, glucose_mg_dl, interval_min, max_gap_min)
    below = grid.values < threshold_mg_dl
    longer_than = require_positive(longer_than_min, "longer_than_min")
    rule = _run_start_rule(grid, below, lambda minutes: minutes > longer_than)
    end = require_positive(end_duration_min, "end_duration_min")
    return _scan(grid, EpisodeKind.HYPO_EXTENDED, below, rule, end)


def hyperglycaemia_episodes(
    timestamps: TimestampsInput,
    glucose_mg_dl: npt.ArrayLike,
    *,
    threshold_mg_dl: float = HYPER_LEVEL_1_MG_DL,
    min_duration_min: float = EVENT_MIN_DURATION_MIN,
    end_duration_min: float = EVENT_END_DURATION_MIN,
    kind: EpisodeKind = EpisodeKind.HYPER_LEVEL_1,
    interval_min: float = DEFAULT_INTERVAL_MIN,
    max_gap_min: float | None = None,
) -> list[Episode]:
    """Episodes starting with >= min_duration_min consecutive min of G > threshold; ending with
    >= end_duration_min consecutive min of G <= threshold. Defaults: level 1 (180 mg/dL, 15 min, 15 min);
    pass threshold_mg_dl=250, kind=HYPER_LEVEL_2 for level 2. Time model and NaN/gap handling: module doc.
    Source: Battelino et al. 2023, doi 10.1016/S2213-8587(22)00319-9.
    """
    grid = _grid(timestamps, glucose_mg_dl, interval_min, max_gap_min)
    above = grid.values > threshold_mg_dl
    minimum = require_positive(min_duration_min, "min_duration_min")
    rule = _run_start_rule(grid, above, lambda minutes: minutes >= minimum)
    return _scan(grid, kind, above, rule, require_positive(end_duration_min, "end_duration_min"))


def extended_hyperglycaemia_episodes(
    timestamps: TimestampsInput,
    glucose_mg_dl: npt.ArrayLike,
    *,
    threshold_mg_dl: float = HYPER_LEVEL_2_MG_DL,
    window_min: float = EXTENDED_HYPER_WINDOW_MIN,
    cumulative_min: float = EXTENDED_HYPER_CUMULATIVE_MIN,
    recovery_mg_dl: float = HYPER_LEVEL_1_MG_DL,
    end_duration_min: float = EVENT_END_DURATION_MIN,
    interval_min: float = DEFAULT_INTERVAL_MIN,
    max_gap_min: float | None = None,
) -> list[Episode]:
    """Episodes starting when readings > threshold (250 mg/dL) add up to >= cumulative_min (90) within any
    window_min (120) period (each reading = one slot; readings in the last window_min / interval slots of the
    current gap-free stretch); the episode starts at the first such reading in that window. It ends with
    >= end_duration_min (15) consecutive min of G <= recovery_mg_dl (180). Module doc: time model.
    Source: Battelino et al. 2023, doi 10.1016/S2213-8587(22)00319-9.
    """
    grid = _grid(timestamps, glucose_mg_dl, interval_min, max_gap_min)
    above = grid.values > threshold_mg_dl
    window_slots = require_positive(window_min, "window_min") / grid.interval_min
    needed = require_positive(cumulative_min, "cumulative_min")
    segment_first = np.empty(grid.values.size, dtype=np.int64)
    for first, last in grid.segments:
        segment_first[first : last + 1] = first

    def starts_at(grid_: _Grid, index: int, floor: int) -> int | None:
        if not above[index]:
            return None
        lowest = max(floor, int(segment_first[index]))
        window_first = index
        while (
            window_first > lowest
            and (grid_.seconds[index] - grid_.seconds[window_first - 1]) / SECONDS_PER_MINUTE / grid_.interval_min
            < window_slots - 0.5
        ):
            window_first -= 1
        in_window = above[window_first : index + 1]
        if np.count_nonzero(in_window) * grid_.interval_min < needed:
            return None
        return window_first + int(np.argmax(in_window))

    not_recovered = grid.values > recovery_mg_dl
    end = require_positive(end_duration_min, "end_duration_min")
    return _scan(grid, EpisodeKind.HYPER_EXTENDED, not_recovered, starts_at, end)


def detect_episodes(
    timestamps: TimestampsInput,
    glucose_mg_dl: npt.ArrayLike,
    *,
    interval_min: float = DEFAULT_INTERVAL_MIN,
    max_gap_min: float | None = None,
) -> dict[EpisodeKind, list[Episode]]:
    """All six consensus event types with their default thresholds, keyed by kind.

    Source: Battelino et al. 2023, doi 10.1016/S2213-8587(22)00319-9.
    """
    return {
        EpisodeKind.HYPO_LEVEL_1: hypoglycaemia_episodes(
            timestamps, glucose_mg_dl, interval_min=interval_min, max_gap_min=max_gap_min
        ),
        EpisodeKind.HYPO_LEVEL_2: hypoglycaemia_episodes(
            timestamps,
            glucose_mg_dl,
            threshold_mg_dl=HYPO_LEVEL_2_MG_DL,
            kind=EpisodeKind.HYPO_LEVEL_2,
            interval_min=interval_min,
            max_gap_min=max_gap_min,
        ),
        EpisodeKind.HYPO_EXTENDED: extended_hypoglycaemia_episodes(
            timestamps, glucose_mg_dl, interval_min=interval_min, max_gap_min=max_gap_min
        ),
        EpisodeKind.HYPER_LEVEL_1: hyperglycaemia_episodes(
            timestamps, glucose_mg_dl, interval_min=interval_min, max_gap_min=max_gap_min
        ),
        EpisodeKind.HYPER_LEVEL_2: hyperglycaemia_episodes(
            timestamps,
            glucose_mg_dl,
            threshold_mg_dl=HYPER_LEVEL_2_MG_DL,
            kind=EpisodeKind.HYPER_LEVEL_2,
            interval_min=interval_min,
            max_gap_min=max_gap_min,
        ),
        EpisodeKind.HYPER_EXTENDED: extended_hyperglycaemia_episodes(
            timestamps, glucose_mg_dl, interval_min=interval_min, max_gap_min=max_gap_min
        ),
    }


def summarize_episodes(
    episodes: Sequence[Episode],
    *,
    window_start: Timestamp,
    window_end: Timestamp,
) -> EpisodeSummary:
    """Count and durations of the episodes whose start lies in [window_start, window_end).

    episodes_per_day = count / window length in days (calendar time, gaps included; iglu divides by
    recorded time instead). mean_duration_min is None when there are none. Raises ValueError if the
    window is empty or reversed.
    Source: Battelino et al. 2023 (report events as count and duration), doi 10.1016/S2213-8587(22)00319-9.
    """
    start_s, end_s = (float(s) for s in epoch_seconds([window_start, window_end], field="window"))
    if end_s <= start_s:
        raise ValueError(f"window_end must be after window_start, got {window_start!r} .. {window_end!r}")
    inside = [e for e in episodes if start_s <= e.start_epoch_s < end_s]
    total = float(sum(e.duration_min for e in inside))
    return EpisodeSummary(
        count=len(inside),
        total_duration_min=total,
        mean_duration_min=total / len(inside) if inside else None,
        episodes_per_day=len(inside) / ((end_s - start_s) / SECONDS_PER_DAY),
    )
