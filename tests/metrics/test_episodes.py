"""Consensus episodes on hand-built series: start and end durations, levels, gaps, extended events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from streams.metrics.episodes import (
    Episode,
    EpisodeEnd,
    EpisodeKind,
    detect_episodes,
    extended_hyperglycaemia_episodes,
    extended_hypoglycaemia_episodes,
    hyperglycaemia_episodes,
    hypoglycaemia_episodes,
    summarize_episodes,
)

Subjects = dict[str, tuple[list[float], list[float]]]
T0 = 1_700_000_000.0


def series(values: Sequence[float], step_min: float = 5.0, start_s: float = T0) -> tuple[list[float], list[float]]:
    return [start_s + i * step_min * 60 for i in range(len(values))], list(values)


def at(index: int, step_min: float = 5.0) -> float:
    return T0 + index * step_min * 60


def test_exactly_15_minutes_below_70_is_an_episode() -> None:
    episodes = hypoglycaemia_episodes(*series([100, 65, 65, 65, 100, 100, 100]))
    assert episodes == [
        Episode(
            kind=EpisodeKind.HYPO_LEVEL_1,
            start_epoch_s=at(1),
            end_epoch_s=at(4),
            duration_min=15.0,
            extreme_mg_dl=65.0,
            mean_mg_dl=65.0,
            n_readings=3,
            ended_by=EpisodeEnd.RECOVERED,
        )
    ]


def test_10_minutes_below_70_is_not() -> None:
    assert hypoglycaemia_episodes(*series([100, 65, 65, 100, 100, 100])) == []


def test_14_versus_15_minutes_with_one_minute_readings() -> None:
    def with_low_minutes(n: int) -> list[float]:
        return [100.0] * 5 + [60.0] * n + [100.0] * 20

    assert hypoglycaemia_episodes(*series(with_low_minutes(14), step_min=1), interval_min=1) == []
    [episode] = hypoglycaemia_episodes(*series(with_low_minutes(15), step_min=1), interval_min=1)
    assert episode.duration_min == 15.0
    assert episode.start_epoch_s == at(5, step_min=1)


def test_70_itself_is_not_below() -> None:
    assert hypoglycaemia_episodes(*series([100, 70, 70, 70, 100, 100, 100])) == []


def test_sensor_clock_jitter_does_not_shorten_15_minutes() -> None:
    stamps = [T0, T0 + 299, T0 + 598, T0 + 897, T0 + 1196, T0 + 1495]
    [episode] = hypoglycaemia_episodes(stamps, [65, 65, 65, 100, 100, 100])
    assert episode.duration_min == 15.0


def test_short_recovery_does_not_end_the_episode() -> None:
    # 20 min low, 10 min >= 70 (too short to end it), 5 min low, then 15 min >= 70 ends it.
    values = [100, 60, 60, 60, 60, 80, 80, 65, 90, 90, 90, 100]
    [episode] = hypoglycaemia_episodes(*series(values))
    assert episode.start_epoch_s == at(1)
    assert episode.duration_min == 35.0  # readings 1..7, the short recovery included
    assert episode.end_epoch_s == at(8)
    assert episode.n_readings == 7
    assert episode.extreme_mg_dl == 60.0
    assert episode.ended_by is EpisodeEnd.RECOVERED


def test_a_second_episode_needs_its_own_15_minutes() -> None:
    values = [60, 60, 60, 100, 100, 100, 60, 60, 100, 100, 100, 55, 55, 55, 100, 100, 100]
    episodes = hypoglycaemia_episodes(*series(values))
    assert [e.start_epoch_s for e in episodes] == [at(0), at(11)]
    assert [e.extreme_mg_dl for e in episodes] == [60.0, 55.0]


def test_unconfirmed_recovery_at_the_end_of_data() -> None:
    [episode] = hypoglycaemia_episodes(*series([100, 60, 60, 60, 80, 80]))
    assert episode.ended_by is EpisodeEnd.DATA_END
    assert episode.duration_min == 15.0  # ends after the last low reading


def test_level_2_ends_at_54_while_level_1_goes_on() -> None:
    values = [100, 50, 50, 50, 60, 60, 60, 100]
    [level_2] = hypoglycaemia_episodes(*series(values), threshold_mg_dl=54, kind=EpisodeKind.HYPO_LEVEL_2)
    assert (level_2.kind, level_2.duration_min, level_2.ended_by) == (
        EpisodeKind.HYPO_LEVEL_2,
        15.0,
        EpisodeEnd.RECOVERED,
    )
    [level_1] = hypoglycaemia_episodes(*series(values))
    assert (level_1.duration_min, level_1.extreme_mg_dl, level_1.ended_by) == (30.0, 50.0, EpisodeEnd.DATA_END)


def test_gap_breaks_continuity() -> None:
    # Two 10-min lows separated by a 30-min hole: no run lasts 15 min.
    stamps = [T0, T0 + 300, T0 + 2100, T0 + 2400, T0 + 2700, T0 + 3000, T0 + 3300]
    values = [60, 60, 60, 60, 100, 100, 100]
    assert hypoglycaemia_episodes(stamps, values) == []
    # A caller that allows 45-min gaps (iglu's inter_gap) gets one run: 60..60 spans 45 min of slots.
    [bridged] = hypoglycaemia_episodes(stamps, values, max_gap_min=45)
    assert bridged.duration_min == 45.0


def test_one_missing_reading_is_bridged_by_default() -> None:
    stamps = [T0, T0 + 300, T0 + 900, T0 + 1200, T0 + 1500, T0 + 1800]  # reading at +600 missing
    [episode] = hypoglycaemia_episodes(stamps, [60, 60, 60, 100, 100, 100])
    assert episode.duration_min == 20.0
    assert episode.n_readings == 3


def test_nan_readings_are_dropped_then_bridged() -> None:
    [episode] = hypoglycaemia_episodes(*series([60, float("nan"), 60, 60, 100, 100, 100]))
    assert episode.duration_min == 20.0
    assert episode.n_readings == 3


def test_episode_open_at_a_gap_ends_there() -> None:
    stamps = [T0 + i * 300 for i in range(4)] + [T0 + 7200 + i * 300 for i in range(3)]
    [episode] = hypoglycaemia_episodes(stamps, [60, 60, 60, 60, 100, 100, 100])
    assert episode.ended_by is EpisodeEnd.GAP
    assert episode.duration_min == 20.0


def test_aware_datetimes_and_unsorted_input() -> None:
    start = datetime(2024, 5, 1, 3, 0, tzinfo=UTC)
    stamps = [start + timedelta(minutes=5 * i) for i in range(7)]
    values = [100, 65, 65, 65, 100, 100, 100]
    order = [6, 0, 3, 1, 5, 2, 4]
    [episode] = hypoglycaemia_episodes([stamps[i] for i in order], [values[i] for i in order])
    assert episode.start_epoch_s == (start + timedelta(minutes=5)).timestamp()


def test_extended_hypoglycaemia_needs_more_than_120_minutes() -> None:
    def low_for(n_readings: int) -> list[float]:
        return [100.0] + [65.0] * n_readings + [100.0] * 3

    assert extended_hypoglycaemia_episodes(*series(low_for(24))) == []  # exactly 120 min
    [episode] = extended_hypoglycaemia_episodes(*series(low_for(25)))  # 125 min
    assert (episode.kind, episode.duration_min, episode.ended_by) == (
        EpisodeKind.HYPO_EXTENDED,
        125.0,
        EpisodeEnd.RECOVERED,
    )
    # 120 min below 70 is still a level 1 episode.
    assert len(hypoglycaemia_episodes(*series(low_for(24)))) == 1


def test_extended_hypoglycaemia_uses_70_not_54() -> None:
    [episode] = extended_hypoglycaemia_episodes(*series([100.0] + [60.0] * 25 + [100.0] * 3))
    assert episode.extreme_mg_dl == 60.0


def test_hyperglycaemia_levels_and_their_end_rules() -> None:
    assert hyperglycaemia_episodes(*series([150, 180, 180, 180, 150, 150, 150])) == []
    values = [150, 260, 260, 260, 200, 200, 200, 170, 170, 170]
    [level_1] = hyperglycaemia_episodes(*series(values))
    assert (level_1.duration_min, level_1.extreme_mg_dl, level_1.ended_by) == (30.0, 260.0, EpisodeEnd.RECOVERED)
    [level_2] = hyperglycaemia_episodes(*series(values), threshold_mg_dl=250, kind=EpisodeKind.HYPER_LEVEL_2)
    assert (level_2.duration_min, level_2.ended_by) == (15.0, EpisodeEnd.RECOVERED)
    # 180 itself counts towards recovery ("<= 180").
    [ended] = hyperglycaemia_episodes(*series([200, 200, 200, 180, 180, 180, 200]))
    assert ended.duration_min == 15.0


def test_extended_hyperglycaemia_needs_90_of_120_minutes_above_250() -> None:
    recovery = [170.0] * 3
    enough = [170.0] + [260.0] * 9 + [240.0] * 6 + [260.0] * 9 + [240.0] * 4 + recovery  # 18 of 24 slots
    [episode] = extended_hyperglycaemia_episodes(*series(enough))
    assert episode.start_epoch_s == at(1)
    assert episode.duration_min == 28 * 5.0  # through the 240s: the episode ends only at <= 180
    assert (episode.extreme_mg_dl, episode.ended_by) == (260.0, EpisodeEnd.RECOVERED)
    too_little = [170.0] + [260.0] * 9 + [240.0] * 7 + [260.0] * 8 + recovery  # 17 of 24 slots
    assert extended_hyperglycaemia_episodes(*series(too_little)) == []


def test_extended_hyperglycaemia_window_is_120_minutes() -> None:
    # 18 readings above 250 spread over 25 slots: no 24-slot window holds 18.
    spread = [170.0] + [260.0] * 9 + [240.0] * 7 + [260.0] * 9 + [170.0] * 3
    assert extended_hyperglycaemia_episodes(*series(spread)) == []


def test_detect_episodes_returns_every_kind() -> None:
    values = [100.0] + [50.0] * 26 + [100.0] * 3
    found = detect_episodes(*series(values))
    assert set(found) == set(EpisodeKind)
    assert [len(found[kind]) for kind in EpisodeKind] == [1, 1, 1, 0, 0, 0]


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError, match="max_gap_min"):
        hypoglycaemia_episodes(*series([60, 60, 60]), max_gap_min=1)
    with pytest.raises(ValueError, match="interval_min"):
        hypoglycaemia_episodes(*series([60, 60, 60]), interval_min=0)
    with pytest.raises(ValueError, match="same length"):
        hypoglycaemia_episodes([T0], [60, 60])
    assert hypoglycaemia_episodes([], []) == []


def test_summary_per_window() -> None:
    values = [60, 60, 60, 100, 100, 100] * 4  # an episode every 30 min
    episodes = hypoglycaemia_episodes(*series(values))
    assert len(episodes) == 4
    summary = summarize_episodes(episodes, window_start=at(0), window_end=at(12))
    assert (summary.count, summary.total_duration_min, summary.mean_duration_min) == (2, 30.0, 15.0)
    assert summary.episodes_per_day == pytest.approx(2 / (60 / 1440))
    empty = summarize_episodes(episodes, window_start=at(100), window_end=at(200))
    assert (empty.count, empty.mean_duration_min) == (0, None)
    with pytest.raises(ValueError, match="window_end"):
        summarize_episodes(episodes, window_start=at(5), window_end=at(5))


REFERENCE_KINDS = {
    "hypo_lv1": EpisodeKind.HYPO_LEVEL_1,
    "hypo_lv2": EpisodeKind.HYPO_LEVEL_2,
    "hypo_extended": EpisodeKind.HYPO_EXTENDED,
    "hyper_lv1": EpisodeKind.HYPER_LEVEL_1,
    "hyper_lv2": EpisodeKind.HYPER_LEVEL_2,
}


def test_counts_close_to_iglu_on_example_data(iglu_example: Subjects, iglu_reference: dict[str, Any]) -> None:
    # iglu interpolates onto a midnight-aligned 5-min grid before counting, so counts are compared, not
    # durations; with iglu's 45-min gap allowance they agree within one episode per subject and kind.
    for subject, (seconds, glucose) in iglu_example.items():
        found = detect_episodes(seconds, glucose, max_gap_min=45)
        for key, kind in REFERENCE_KINDS.items():
            expected = iglu_reference["episode_total"][key][subject]
            assert abs(len(found[kind]) - expected) <= 1, (subject, key, len(found[kind]), expected)
