"""The worker's steps as plain functions, no I/O: fold events into a user's state, assess the state, and
decide what to publish.

- `apply_event(state, event) -> state`: idempotent (keyed by event id).
- `settle(state) -> state`: prune what fell out of the windows once a batch's events are applied.
- `assess(state, guideline) -> Assessment`: every metric, from the streams.metrics functions, and the tier.
- `publications(...)`: the risk-tier change and the alerts not yet published, and the state that records them.

Alerts are only raised for readings that reached VitalStream within ALERT_MAX_DELAY_S of happening (by the
event's own received_at), so importing last year's data raises none; this depends on the event alone, so a
replay decides the same. Derived event ids come from the trigger's event id (schemas.derived).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from uuid import UUID

import numpy as np

from schemas import derived
from schemas.derived import Alert, AlertKind, AlertSeverity, RiskTierChanged, TierReason, derived_event_id
from schemas.events import (
    BloodPressureReading,
    Event,
    ExerciseSession,
    GlucoseKind,
    GlucoseReading,
    HbA1cResult,
)
from streams.glucose import GlucoseSummary, select_window, summarize_window
from streams.metrics import (
    BpGuideline,
    BpWindowClassification,
    Episode,
    EpisodeKind,
    TierAssessment,
    UserMetrics,
    assess_tier,
    classify_bp_window,
    classify_hba1c,
    extended_hyperglycaemia_episodes,
    extended_hypoglycaemia_episodes,
    hypoglycaemia_episodes,
    is_hypertensive_crisis,
)
from streams.metrics.episodes import HYPO_LEVEL_2_MG_DL
from streams.state import (
    ALERTED_RETENTION_S,
    BP_WINDOW_S,
    EXERCISE_WINDOW_S,
    GLUCOSE_RETENTION_S,
    HOUR_S,
    GlucoseWindow,
    TierStatus,
    UserState,
    Vitals,
    hour_of,
)

GLUCOSE_WINDOWS_DAYS: dict[str, float] = {"24h": 1.0, "14d": 14.0}
#: Alerts only for readings received within this long of happening (a live device, not an import).
ALERT_MAX_DELAY_S = 6 * HOUR_S
#: An episode raises an alert while its last reading lies within this long of the user's newest reading.
ALERT_RECENT_S = 3 * HOUR_S
#: ESC/ESH 2018 home BP: morning and evening readings on at least 3 days (preferably 6-7), so >= 6 readings.
BP_MIN_READINGS_7D = 6


# -- folding events into state ------------------------------------------------------------------------------
def apply_event(state: UserState, event: Event) -> UserState:
    """The state with `event` in it; the same state when it is already there or outside the windows."""
    epoch_s = event.occurred_at.timestamp()
    event_id = str(event.event_id)
    match event:
        case GlucoseReading(kind=GlucoseKind.CGM):
            return replace(state, window=add_cgm(state.window, event_id, epoch_s, event.glucose_mg_dl))
        case BloodPressureReading():
            vitals = add_bp(state.vitals, event_id, epoch_s, event.systolic_mmhg, event.diastolic_mmhg)
            return replace(state, vitals=vitals)
        case ExerciseSession():
            return replace(state, vitals=add_exercise(state.vitals, event_id, epoch_s, event.duration_min))
        case HbA1cResult():
            return replace(state, vitals=set_hba1c(state.vitals, event_id, epoch_s, event.hba1c_pct))
    # Fingersticks, lab glucose and meals change no rolling state: daily totals come from the stored rows.
    return state


def changes_state(event: Event) -> bool:
    """Whether apply_event can change anything for this kind of event (and so a re-assessment is due)."""
    if isinstance(event, GlucoseReading):
        return event.kind is GlucoseKind.CGM
    return isinstance(event, BloodPressureReading | ExerciseSession | HbA1cResult)


def add_cgm(window: GlucoseWindow, event_id: str, epoch_s: float, mg_dl: float) -> GlucoseWindow:
    newest = window.newest()
    newest_s = max(newest[0], epoch_s) if newest is not None else epoch_s
    if epoch_s <= newest_s - GLUCOSE_RETENTION_S:
        return window
    hour = hour_of(epoch_s)
    bucket = window.buckets.get(hour, {})
    if bucket.get(event_id) == (epoch_s, mg_dl):
        return window
    return GlucoseWindow({**window.buckets, hour: {**bucket, event_id: (epoch_s, mg_dl)}})


def add_bp(vitals: Vitals, event_id: str, epoch_s: float, systolic_mmhg: float, diastolic_mmhg: float) -> Vitals:
    entry = (epoch_s, float(systolic_mmhg), float(diastolic_mmhg))
    if vitals.bp.get(event_id) == entry:
        return vitals
    readings = {**vitals.bp, event_id: entry}
    newest_s = max(t for t, _, _ in readings.values())
    return replace(vitals, bp={k: v for k, v in readings.items() if v[0] > newest_s - BP_WINDOW_S})


def add_exercise(vitals: Vitals, event_id: str, epoch_s: float, duration_min: float) -> Vitals:
    entry = (epoch_s, float(duration_min))
    if vitals.exercise.get(event_id) == entry:
        return vitals
    sessions = {**vitals.exercise, event_id: entry}
    newest_s = max(t for t, _ in sessions.values())
    return replace(vitals, exercise={k: v for k, v in sessions.items() if v[0] > newest_s - EXERCISE_WINDOW_S})


def set_hba1c(vitals: Vitals, event_id: str, epoch_s: float, hba1c_pct: float) -> Vitals:
    current = vitals.hba1c
    if current is not None and (current[1], current[0]) >= (epoch_s, event_id):
        return vitals
    return replace(vitals, hba1c=(event_id, epoch_s, float(hba1c_pct)))


def settle(state: UserState) -> UserState:
    """Drop glucose buckets that ended 14 days or more before the newest reading; note the newest hour."""
    newest = state.window.newest()
    if newest is None:
        return state
    cutoff_s = newest[0] - GLUCOSE_RETENTION_S
    buckets = {hour: b for hour, b in state.window.buckets.items() if (hour + 1) * HOUR_S > cutoff_s}
    window = state.window if len(buckets) == len(state.window.buckets) else GlucoseWindow(buckets)
    newest_hour = hour_of(newest[0])
    vitals = state.vitals
    if vitals.glucose_newest_hour != newest_hour:
        vitals = replace(vitals, glucose_newest_hour=newest_hour)
    return UserState(window=window, vitals=vitals)


# -- assessment -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Assessment:
    """A user's metrics and tier as of their newest event (the trigger)."""

    as_of_epoch_s: float
    trigger_event_id: str
    glucose: dict[str, GlucoseSummary]  # by window name ("24h", "14d"); empty without CGM data
    hypo_level2_episodes_14d: list[Episode]
    hypo_extended_episodes_14d: list[Episode]
    hyper_extended_episodes_24h: list[Episode]
    bp: BpWindowClassification | None
    hba1c_pct: float | None
    hba1c_category: str | None
    weekly_exercise_min: float | None
    tier: TierAssessment
    guideline: BpGuideline

    @property
    def as_of(self) -> datetime:
        return datetime.fromtimestamp(self.as_of_epoch_s, UTC)


def newest_event(state: UserState) -> tuple[float, str] | None:
    """(epoch s, event id) of the newest event anywhere in the state."""
    candidates: list[tuple[float, str]] = []
    glucose = state.window.newest()
    if glucose is not None:
        candidates.append(glucose)
    vitals = state.vitals
    candidates += [(t, k) for k, (t, _, _) in vitals.bp.items()]
    candidates += [(t, k) for k, (t, _) in vitals.exercise.items()]
    if vitals.hba1c is not None:
        candidates.append((vitals.hba1c[1], vitals.hba1c[0]))
    return max(candidates) if candidates else None


def _known(value: float) -> float | None:
    return None if math.isnan(value) else value


def assess(state: UserState, guideline: BpGuideline) -> Assessment | None:
    """Every metric of the state and the risk tier; None for an empty state."""
    trigger = newest_event(state)
    if trigger is None:
        return None
    as_of_s, trigger_id = trigger
    epoch_s, mg_dl, _ = state.window.arrays()
    glucose: dict[str, GlucoseSummary] = {}
    level2: list[Episode] = []
    extended_hypo: list[Episode] = []
    extended_hyper: list[Episode] = []
    if epoch_s.size:
        end_s = float(epoch_s[-1])
        for name, days in GLUCOSE_WINDOWS_DAYS.items():
            glucose[name] = summarize_window(epoch_s, mg_dl, window_days=days, end_epoch_s=end_s)
        t14, v14 = select_window(epoch_s, mg_dl, window_days=14.0, end_epoch_s=end_s)
        level2 = hypoglycaemia_episodes(t14, v14, threshold_mg_dl=HYPO_LEVEL_2_MG_DL, kind=EpisodeKind.HYPO_LEVEL_2)
        extended_hypo = extended_hypoglycaemia_episodes(t14, v14)
        t24, v24 = select_window(epoch_s, mg_dl, window_days=1.0, end_epoch_s=end_s)
        extended_hyper = extended_hyperglycaemia_episodes(t24, v24)
    vitals = state.vitals
    bp = None
    if vitals.bp:
        readings = sorted(vitals.bp.values())
        bp = classify_bp_window(
            [t for t, _, _ in readings], [s for _, s, _ in readings], [d for _, _, d in readings],
            guideline=guideline, window_days=BP_WINDOW_S / 86_400,
        )
    hba1c_pct = vitals.hba1c[2] if vitals.hba1c is not None else None
    weekly_exercise = None
    if vitals.exercise:
        weekly_exercise = sum(m for t, m in vitals.exercise.values() if t > as_of_s - EXERCISE_WINDOW_S)
    g14 = glucose.get("14d")
    metrics = UserMetrics(
        time_in_range_pct=_known(g14.tir_pct) if g14 else None,
        time_below_70_pct=_known(g14.tbr70_pct) if g14 else None,
        time_below_54_pct=_known(g14.tbr54_pct) if g14 else None,
        time_above_180_pct=_known(g14.tar180_pct) if g14 else None,
        time_above_250_pct=_known(g14.tar250_pct) if g14 else None,
        cv_pct=_known(g14.cv_pct) if g14 else None,
        gri=_known(g14.gri) if g14 else None,
        hypo_level_2_episodes=len(level2) if g14 else None,
        hypo_extended_episodes=len(extended_hypo) if g14 else None,
        cgm_data_sufficient=g14.sufficient if g14 else None,
        hba1c_pct=hba1c_pct,
        bp_crisis_readings=bp.crisis_reading_count if bp else None,
        bp_mean_7d_systolic_mmhg=bp.mean.systolic_mmhg if bp else None,
        bp_mean_7d_diastolic_mmhg=bp.mean.diastolic_mmhg if bp else None,
    )
    return Assessment(
        as_of_epoch_s=as_of_s,
        trigger_event_id=trigger_id,
        glucose=glucose,
        hypo_level2_episodes_14d=level2,
        hypo_extended_episodes_14d=extended_hypo,
        hyper_extended_episodes_24h=extended_hyper,
        bp=bp,
        hba1c_pct=hba1c_pct,
        hba1c_category=classify_hba1c(hba1c_pct).value if hba1c_pct is not None else None,
        weekly_exercise_min=weekly_exercise,
        tier=assess_tier(metrics, bp_guideline=guideline),
        guideline=guideline,
    )


# -- alerts and tier changes ------------------------------------------------------------------------------
def is_fresh(event: Event) -> bool:
    """Received within ALERT_MAX_DELAY_S of happening: a live reading that may still need action."""
    return (event.received_at - event.occurred_at).total_seconds() <= ALERT_MAX_DELAY_S


def _alert(user_id: str, kind: AlertKind, severity: AlertSeverity, trigger_id: str, trigger_s: float,
           message: str, values: dict[str, float], produced_at: datetime) -> Alert:
    return Alert(
        event_id=derived_event_id(f"alert|{kind.value}", trigger_id),
        user_id=user_id,
        trigger_event_id=UUID(trigger_id),
        occurred_at=datetime.fromtimestamp(trigger_s, UTC),
        produced_at=produced_at,
        kind=kind,
        severity=severity,
        message=message,
        values=values,
    )


def event_alerts(event: Event, produced_at: datetime) -> list[Alert]:
    """Alerts one reading raises on its own: a BP crisis, a meter or lab glucose below 54 mg/dL."""
    if not is_fresh(event):
        return []
    trigger_s = event.occurred_at.timestamp()
    if isinstance(event, BloodPressureReading) and is_hypertensive_crisis(event.systolic_mmhg, event.diastolic_mmhg):
        return [_alert(
            event.user_id, AlertKind.HYPERTENSIVE_CRISIS, AlertSeverity.CRITICAL, str(event.event_id), trigger_s,
            f"Blood pressure {event.systolic_mmhg}/{event.diastolic_mmhg} mmHg is in the crisis range "
            "(above 180 and/or 120 mmHg)",
            {"systolic_mmhg": float(event.systolic_mmhg), "diastolic_mmhg": float(event.diastolic_mmhg)},
            produced_at,
        )]
    if (isinstance(event, GlucoseReading) and event.kind is not GlucoseKind.CGM
            and event.glucose_mg_dl < HYPO_LEVEL_2_MG_DL):
        return [_alert(
            event.user_id, AlertKind.LEVEL2_HYPOGLYCAEMIA, AlertSeverity.CRITICAL, str(event.event_id), trigger_s,
            f"Glucose {event.glucose_mg_dl:.0f} mg/dL ({event.kind.value}) is below 54 mg/dL (level 2 hypoglycaemia)",
            {"glucose_mg_dl": event.glucose_mg_dl},
            produced_at,
        )]
    return []


def episode_alerts(user_id: str, state: UserState, assessment: Assessment, produced_at: datetime) -> list[Alert]:
    """Level 2 hypoglycaemia and extended hyperglycaemia episodes whose last reading is recent.

    Call only when the batch brought the user a fresh CGM reading (see is_fresh). The trigger is the
    episode's first reading, so the same episode always gives the same alert id.
    """
    newest = state.window.newest()
    if newest is None:
        return []
    epoch_s, _, ids = state.window.arrays()
    alerts = []
    for episode in assessment.hypo_level2_episodes_14d:
        if episode.end_epoch_s >= newest[0] - ALERT_RECENT_S:
            trigger = ids[int(np.searchsorted(epoch_s, episode.start_epoch_s))]
            alerts.append(_alert(
                user_id, AlertKind.LEVEL2_HYPOGLYCAEMIA, AlertSeverity.CRITICAL, trigger, episode.start_epoch_s,
                f"Level 2 hypoglycaemia: glucose below 54 mg/dL for {episode.duration_min:.0f} min "
                f"(lowest {episode.extreme_mg_dl:.0f} mg/dL)",
                {"nadir_mg_dl": episode.extreme_mg_dl, "duration_min": episode.duration_min,
                 "mean_mg_dl": episode.mean_mg_dl},
                produced_at,
            ))
    for episode in assessment.hyper_extended_episodes_24h:
        if episode.end_epoch_s >= newest[0] - ALERT_RECENT_S:
            trigger = ids[int(np.searchsorted(epoch_s, episode.start_epoch_s))]
            alerts.append(_alert(
                user_id, AlertKind.PROLONGED_HYPERGLYCAEMIA, AlertSeverity.WARNING, trigger, episode.start_epoch_s,
                f"Prolonged hyperglycaemia: above 250 mg/dL for at least 90 of 120 min "
                f"(episode {episode.duration_min:.0f} min so far, peak {episode.extreme_mg_dl:.0f} mg/dL)",
                {"peak_mg_dl": episode.extreme_mg_dl, "duration_min": episode.duration_min,
                 "mean_mg_dl": episode.mean_mg_dl},
                produced_at,
            ))
    return alerts


@dataclass(frozen=True, slots=True)
class Publications:
    """What to publish for one user, and the vitals that remember it was published."""

    vitals: Vitals
    tier_change: RiskTierChanged | None
    alerts: list[Alert]


def tier_codes(tier: TierAssessment) -> tuple[str, ...]:
    return tuple(sorted(reason.code for reason in tier.reasons))


def publications(user_id: str, vitals: Vitals, assessment: Assessment | None, candidates: Iterable[Alert],
                 produced_at: datetime) -> Publications:
    """The tier change (when the tier or its rule codes differ from the last published) and new alerts.

    Replays find their alerts and tier already recorded in `vitals` and publish nothing again; if the
    worker died between publishing and recording, they publish the same ids again.
    """
    fresh: dict[str, Alert] = {}
    for alert in candidates:
        key = str(alert.event_id)
        if key not in vitals.alerted:
            fresh.setdefault(key, alert)
    alerted = {**vitals.alerted, **{k: a.occurred_at.timestamp() for k, a in fresh.items()}}
    horizon_s = max([*alerted.values(), assessment.as_of_epoch_s if assessment else -math.inf])
    alerted = {k: t for k, t in alerted.items() if t > horizon_s - ALERTED_RETENTION_S}
    change = None
    status = vitals.tier
    if assessment is not None:
        codes = tier_codes(assessment.tier)
        new_status = TierStatus(assessment.tier.tier.value, codes)
        if new_status != vitals.tier:
            change = RiskTierChanged(
                event_id=derived_event_id(
                    "risk_tier_changed", f"{assessment.trigger_event_id}|{new_status.tier}|{','.join(codes)}"
                ),
                user_id=user_id,
                trigger_event_id=UUID(assessment.trigger_event_id),
                occurred_at=assessment.as_of,
                produced_at=produced_at,
                tier=derived.RiskTier(new_status.tier),
                previous_tier=derived.RiskTier(vitals.tier.tier) if vitals.tier is not None else None,
                reasons=[TierReason(code=r.code, tier=derived.RiskTier(r.tier.value), text=r.text, source=r.source)
                         for r in assessment.tier.reasons],
                bp_guideline=derived.BpGuideline(assessment.guideline.value),
            )
        status = new_status
    return Publications(vitals=replace(vitals, tier=status, alerted=alerted), tier_change=change,
                        alerts=list(fresh.values()))
