"""Rows of the derived tables, and the metric names the API's rankings read from user_metrics_current."""

from __future__ import annotations

from datetime import timedelta

import pytest

from streams.metrics import BpGuideline
from streams.rows import glucose_metric_rows, user_metric_rows
from streams.state import UserState
from streams.steps import apply_event, assess, settle
from tests.streams.factories import T0, bp, cgm_trace, exercise, hba1c


def full_assessment_rows() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    state = UserState()
    events = [*cgm_trace("u", T0, [100.0 + i % 50 for i in range(300)]), hba1c("u", T0, 6.8),
              *[bp("u", T0 + timedelta(hours=4 * i), 128, 82) for i in range(6)], exercise("u", T0, 30.0)]
    for event in events:
        state = apply_event(state, event)
    state = settle(state)
    assessment = assess(state, BpGuideline.ACC_AHA_2017)
    assert assessment is not None
    newest = state.window.newest()
    assert newest is not None
    return glucose_metric_rows("u", assessment, newest[0]), user_metric_rows("u", assessment, newest[0])


def test_every_rankable_metric_is_written_under_the_name_the_api_reads() -> None:
    rankings = pytest.importorskip("storage.rankings")
    _, metric_rows = full_assessment_rows()
    written = {row["metric"] for row in metric_rows}
    expected = {name for rankable in rankings.RANKABLE.values() for name in rankable.stored.values()}
    assert expected <= written, expected - written


def test_glucose_metric_rows_are_keyed_by_window_and_hour_of_the_newest_reading() -> None:
    glucose_rows, metric_rows = full_assessment_rows()
    assert sorted(str(row["window"]) for row in glucose_rows) == ["14d", "24h"]
    newest = T0 + timedelta(minutes=5 * 299)
    for row in glucose_rows:
        assert row["as_of"] == newest and row["as_of_hour"] == newest.replace(minute=0)
    assert all(isinstance(row["value"], float) for row in metric_rows)
    bp_rows = {row["metric"]: row for row in metric_rows if str(row["metric"]).startswith("mean_s")}
    assert bp_rows["mean_systolic_7d_mmhg"]["value"] == 128.0 and bp_rows["mean_systolic_7d_mmhg"]["sufficient"]
