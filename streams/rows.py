"""An assessment as rows of the derived tables (storage.tables): absolute values, written by upsert."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.derived import RiskTierChanged
from streams.metrics import RiskTier
from streams.state import HOUR_S
from streams.steps import BP_MIN_READINGS_7D, GLUCOSE_WINDOWS_DAYS, Assessment

Row = dict[str, Any]


def _value(number: float | None) -> float | None:
    return None if number is None or math.isnan(number) else float(number)


def _at(epoch_s: float) -> datetime:
    return datetime.fromtimestamp(epoch_s, UTC)


def glucose_metric_rows(user_id: str, assessment: Assessment, end_epoch_s: float) -> list[Row]:
    """One glucose_metrics row per window, as of the newest CGM reading (`end_epoch_s`)."""
    rows = []
    for window, summary in assessment.glucose.items():
        rows.append({
            "user_id": user_id,
            "window": window,
            "as_of_hour": _at(end_epoch_s // HOUR_S * HOUR_S),
            "as_of": _at(end_epoch_s),
            "window_start": _at(end_epoch_s) - timedelta(days=GLUCOSE_WINDOWS_DAYS[window]),
            "readings": summary.n,
            "mean_mg_dl": _value(summary.mean_mg_dl),
            "sd_mg_dl": _value(summary.sd_mg_dl),
            "cv_pct": _value(summary.cv_pct),
            "gmi_pct": _value(summary.gmi_pct),
            "tir_pct": _value(summary.tir_pct),
            "tbr70_pct": _value(summary.tbr70_pct),
            "tbr54_pct": _value(summary.tbr54_pct),
            "tar180_pct": _value(summary.tar180_pct),
            "tar250_pct": _value(summary.tar250_pct),
            "lbgi": _value(summary.lbgi),
            "hbgi": _value(summary.hbgi),
            "gri": _value(summary.gri),
            "gri_zone": summary.gri_zone,
            "readings_present_pct": _value(summary.coverage_pct),
            "sufficient": summary.sufficient,
        })
    return rows


def user_metric_rows(user_id: str, assessment: Assessment, glucose_end_epoch_s: float | None) -> list[Row]:
    """The rankable metrics (user_metrics_current); unknown values are left out, not written as NULL."""
    values: list[tuple[str, float | None, bool, float]] = []
    g14, g24 = assessment.glucose.get("14d"), assessment.glucose.get("24h")
    if g14 is not None and glucose_end_epoch_s is not None:
        for metric, value in (
            ("time_in_range_14d_pct", g14.tir_pct),
            ("time_below_70_14d_pct", g14.tbr70_pct),
            ("time_below_54_14d_pct", g14.tbr54_pct),
            ("time_above_180_14d_pct", g14.tar180_pct),
            ("time_above_250_14d_pct", g14.tar250_pct),
            ("mean_glucose_14d_mg_dl", g14.mean_mg_dl),
            ("gmi_14d_pct", g14.gmi_pct),
            ("cv_14d_pct", g14.cv_pct),
            ("gri_14d", g14.gri),
            ("hypo_level2_episodes_14d", float(len(assessment.hypo_level2_episodes_14d))),
        ):
            values.append((metric, value, g14.sufficient, glucose_end_epoch_s))
    if g24 is not None and glucose_end_epoch_s is not None:
        values.append(("time_in_range_24h_pct", g24.tir_pct, g24.sufficient, glucose_end_epoch_s))
        values.append(("mean_glucose_24h_mg_dl", g24.mean_mg_dl, g24.sufficient, glucose_end_epoch_s))
    if assessment.bp is not None:
        enough = assessment.bp.n_readings >= BP_MIN_READINGS_7D
        end = assessment.bp.window_end_epoch_s
        values.append(("mean_systolic_7d_mmhg", assessment.bp.mean.systolic_mmhg, enough, end))
        values.append(("mean_diastolic_7d_mmhg", assessment.bp.mean.diastolic_mmhg, enough, end))
    if assessment.weekly_exercise_min is not None:
        values.append(("weekly_exercise_minutes", assessment.weekly_exercise_min, True, assessment.as_of_epoch_s))
    if assessment.hba1c_pct is not None:
        values.append(("hba1c_pct", assessment.hba1c_pct, True, assessment.as_of_epoch_s))
    values.append(("risk_tier_rank", float(RiskTier(assessment.tier.tier).rank), True, assessment.as_of_epoch_s))
    return [
        {"user_id": user_id, "metric": metric, "value": number, "sufficient": bool(sufficient), "as_of": _at(at)}
        for metric, value, sufficient, at in values
        if (number := _value(value)) is not None
    ]


def risk_tier_row(change: RiskTierChanged) -> Row:
    """The risk_tiers history row of a published change."""
    return {
        "user_id": change.user_id,
        "as_of": change.occurred_at,
        "tier": change.tier.value,
        "reasons": [reason.model_dump(mode="json") for reason in change.reasons],
        "event_id": change.event_id,
    }
