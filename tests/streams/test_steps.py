"""The pure steps: folding events into state (idempotently), assessing it, and deciding what to publish."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pytest

from schemas.derived import AlertKind
from schemas.events import Event, GlucoseKind
from streams.metrics import BpGuideline, RiskTier, gri, hbgi, lbgi, summarize_cgm
from streams.state import (
    GLUCOSE_RETENTION_S,
    GlucoseWindow,
    Profile,
    UserState,
    Vitals,
    bucket_from_json,
    bucket_to_json,
    hour_of,
)
from streams.steps import (
    apply_event,
    assess,
    changes_state,
    episode_alerts,
    event_alerts,
    publications,
    settle,
)
from tests.streams.factories import T0, bp, cgm, cgm_trace, exercise, hba1c, meal

GUIDELINE = BpGuideline.ACC_AHA_2017


def fold(events: Sequence[Event], state: UserState | None = None) -> UserState:
    state = state or UserState()
    for event in events:
        state = apply_event(state, event)
    return settle(state)


def test_applying_an_event_twice_changes_nothing() -> None:
    reading = cgm("u", T0, 120.0)
    once = apply_event(UserState(), reading)
    twice = apply_event(once, reading)
    assert twice.window is once.window
    assert once.window.buckets == {hour_of(T0.timestamp()): {str(reading.event_id): (T0.timestamp(), 120.0)}}


def test_glucose_keeps_14_days_before_the_newest_reading_in_hour_buckets() -> None:
    old = cgm("u", T0, 100.0)
    state = fold([old, cgm("u", T0 + timedelta(days=10), 110.0)])
    assert len(state.window.buckets) == 2
    newest = cgm("u", T0 + timedelta(days=14, hours=2), 130.0)
    state = fold([newest], state)
    assert list(state.window.buckets) == [hour_of(T0.timestamp() + 10 * 86400), hour_of(newest.occurred_at.timestamp())]
    assert state.vitals.glucose_newest_hour == hour_of(newest.occurred_at.timestamp())
    # A late reading from before the window is not kept.
    assert fold([cgm("u", T0 + timedelta(hours=1), 90.0)], state).window.buckets == state.window.buckets


def test_a_bucket_straddling_the_window_start_is_kept_until_its_hour_has_passed() -> None:
    first = cgm("u", T0 + timedelta(minutes=30), 100.0)
    newest_s = T0.timestamp() + GLUCOSE_RETENTION_S + 10 * 60
    state = fold([first, cgm("u", T0 + timedelta(seconds=newest_s - T0.timestamp()), 120.0)])
    assert hour_of(T0.timestamp()) in state.window.buckets  # its hour ends after newest - 14 days
    epoch_s, _, _ = state.window.arrays()
    assert epoch_s.tolist() == [first.occurred_at.timestamp(), newest_s]


def test_blood_pressure_and_exercise_keep_7_days_and_hba1c_the_newest_result() -> None:
    state = fold([bp("u", T0, 120, 80), bp("u", T0 + timedelta(days=8), 130, 85),
                  exercise("u", T0, 30), exercise("u", T0 + timedelta(days=6), 45),
                  hba1c("u", T0 + timedelta(days=5), 7.5), hba1c("u", T0, 9.5)])
    assert [v[1] for v in state.vitals.bp.values()] == [130.0]
    assert sorted(m for _, m in state.vitals.exercise.values()) == [30.0, 45.0]
    assert state.vitals.hba1c is not None and state.vitals.hba1c[2] == 7.5


def test_meals_and_fingersticks_change_no_rolling_state() -> None:
    for event in (meal("u", T0), cgm("u", T0, 45.0, kind=GlucoseKind.FINGERSTICK)):
        assert apply_event(UserState(), event) == UserState()
        assert not changes_state(event)
    assert changes_state(cgm("u", T0, 100.0))


def test_state_survives_json_round_trips() -> None:
    state = fold([*cgm_trace("u", T0, [100.0, 110.0]), bp("u", T0, 120, 80), exercise("u", T0, 30),
                  hba1c("u", T0, 6.1)])
    published = publications("u", state.vitals, assess(state, GUIDELINE), [], T0)
    vitals = published.vitals
    assert Vitals.from_json(vitals.to_json()) == vitals
    for bucket in state.window.buckets.values():
        assert bucket_from_json(bucket_to_json(bucket)) == bucket
    assert Profile.from_json(Profile("Asia/Seoul", "ksh_2018").to_json()) == Profile("Asia/Seoul", "ksh_2018")
    assert Profile.from_json(None) == Profile("UTC", None)


def test_assessment_uses_the_metric_functions_on_the_window() -> None:
    rng = np.random.default_rng(7)
    values = [float(v) for v in np.clip(rng.normal(150, 50, 600), 40, 400).round()]
    state = fold(cgm_trace("u", T0, values))
    assessment = assess(state, GUIDELINE)
    assert assessment is not None
    g14 = assessment.glucose["14d"]
    expected = summarize_cgm(values)
    assert g14.n == expected.n_readings == 600
    assert g14.mean_mg_dl == pytest.approx(expected.mean_mg_dl)
    assert g14.tir_pct == pytest.approx(expected.time_in_range_70_180_pct)
    assert (g14.lbgi, g14.hbgi, g14.gri) == pytest.approx((lbgi(values), hbgi(values), gri(values)))
    assert not g14.sufficient  # 600 readings are ~2 days of 14
    g24 = assessment.glucose["24h"]
    assert g24.n == 288  # (newest - 24 h, newest] at 5-minute steps
    assert g24.mean_mg_dl == pytest.approx(float(np.mean(values[-288:])))


def test_a_level_2_hypo_makes_the_tier_urgent_and_raises_one_alert() -> None:
    values = [120.0] * 20 + [50.0] * 5 + [120.0] * 10  # 25 min below 54
    state = fold(cgm_trace("u", T0, values))
    assessment = assess(state, GUIDELINE)
    assert assessment is not None and assessment.tier.tier is RiskTier.URGENT
    assert "HYPO_LEVEL_2_EPISODE" in {r.code for r in assessment.tier.reasons}
    alerts = episode_alerts("u", state, assessment, T0)
    assert [a.kind for a in alerts] == [AlertKind.LEVEL2_HYPOGLYCAEMIA]
    first_low = cgm_trace("u", T0, values)[20]
    assert alerts[0].trigger_event_id == first_low.event_id
    assert alerts[0].values["nadir_mg_dl"] == 50.0


def test_two_hours_above_250_raise_a_prolonged_hyperglycaemia_alert() -> None:
    state = fold(cgm_trace("u", T0, [300.0] * 25))
    assessment = assess(state, GUIDELINE)
    assert assessment is not None
    assert [a.kind for a in episode_alerts("u", state, assessment, T0)] == [AlertKind.PROLONGED_HYPERGLYCAEMIA]


def test_single_reading_alerts_need_a_fresh_reading() -> None:
    crisis = bp("u", T0, 185, 100)
    assert [a.kind for a in event_alerts(crisis, T0)] == [AlertKind.HYPERTENSIVE_CRISIS]
    assert event_alerts(bp("u", T0, 185, 100, received_at=T0 + timedelta(days=1)), T0) == []
    low = cgm("u", T0, 45.0, kind=GlucoseKind.FINGERSTICK)
    assert [a.kind for a in event_alerts(low, T0)] == [AlertKind.LEVEL2_HYPOGLYCAEMIA]
    assert event_alerts(cgm("u", T0, 45.0), T0) == []  # a CGM low alerts only as an episode (>= 15 min)


def test_tier_changes_are_published_once_and_alerts_never_twice() -> None:
    state = fold([bp("u", T0, 190, 100)])
    assessment = assess(state, GUIDELINE)
    candidates = event_alerts(bp("u", T0, 190, 100), T0)
    first = publications("u", state.vitals, assessment, candidates, T0)
    assert first.tier_change is not None and first.tier_change.previous_tier is None
    assert first.tier_change.tier.value == "urgent" and len(first.alerts) == 1
    again = publications("u", first.vitals, assessment, candidates, T0 + timedelta(seconds=5))
    assert again.tier_change is None and again.alerts == []
    # Had the worker died before recording them, the replay publishes the same ids.
    replay = publications("u", state.vitals, assessment, candidates, T0 + timedelta(minutes=1))
    assert replay.tier_change is not None and replay.tier_change.event_id == first.tier_change.event_id
    assert [a.event_id for a in replay.alerts] == [a.event_id for a in first.alerts]


def test_the_outcome_does_not_depend_on_how_events_were_batched() -> None:
    events: list[Event] = [*cgm_trace("u", T0, [110.0] * 30 + [48.0] * 6 + [100.0] * 6),
                           bp("u", T0 + timedelta(hours=1), 150, 95), hba1c("u", T0, 8.0)]
    one = fold(events)
    halves = fold(events[20:], fold(events[:20]))
    reversed_order = fold(list(reversed(events)))
    assert one == halves == reversed_order
    ids = set()
    for state in (one, halves, reversed_order):
        assessment = assess(state, GUIDELINE)
        assert assessment is not None
        published = publications("u", Vitals(), assessment, episode_alerts("u", state, assessment, T0), T0)
        assert published.tier_change is not None
        ids.add((published.tier_change.event_id, tuple(a.event_id for a in published.alerts)))
    assert len(ids) == 1


@pytest.mark.parametrize(("guideline", "tier"), [(BpGuideline.ACC_AHA_2017, RiskTier.MODERATE),
                                                 (BpGuideline.ESC_ESH_2018, RiskTier.LOW)])
def test_the_users_guideline_classifies_the_7_day_mean(guideline: BpGuideline, tier: RiskTier) -> None:
    # 125/78: "elevated" under ACC/AHA (borderline), "normal" under ESC/ESH.
    state = fold([bp("u", T0 + timedelta(hours=12 * i), 125, 78) for i in range(6)])
    assessment = assess(state, guideline)
    assert assessment is not None and assessment.tier.tier is tier


def test_an_empty_state_has_no_assessment() -> None:
    assert assess(UserState(), GUIDELINE) is None
    assert GlucoseWindow().newest() is None
