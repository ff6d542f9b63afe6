"""Risk tier rules: each rule at its boundary, the overall tier, ordering and sources."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from streams.metrics.bp import BpGuideline
from streams.metrics.tier import SOURCES, RiskTier, TierThresholds, UserMetrics, assess_tier


def codes(metrics: UserMetrics, **kwargs: object) -> list[str]:
    return [reason.code for reason in assess_tier(metrics, **kwargs).reasons]  # type: ignore[arg-type]


def test_no_metrics_is_low_without_reasons() -> None:
    result = assess_tier(UserMetrics())
    assert (result.tier, result.reasons) == (RiskTier.LOW, ())


def test_all_within_targets_is_low() -> None:
    metrics = UserMetrics(
        time_in_range_pct=85,
        time_below_70_pct=2,
        time_below_54_pct=0.5,
        time_above_180_pct=12,
        time_above_250_pct=1,
        cv_pct=30,
        gri=25,
        hypo_level_2_episodes=0,
        hypo_extended_episodes=0,
        cgm_data_sufficient=True,
        hba1c_pct=6.8,
        bp_crisis_readings=0,
        bp_mean_7d_systolic_mmhg=118,
        bp_mean_7d_diastolic_mmhg=76,
    )
    assert assess_tier(metrics) == assess_tier(UserMetrics())


@pytest.mark.parametrize(
    ("field", "fires", "quiet", "code", "tier"),
    [
        ("hypo_level_2_episodes", 1, 0, "HYPO_LEVEL_2_EPISODE", RiskTier.URGENT),
        ("bp_crisis_readings", 1, 0, "BP_CRISIS_READING", RiskTier.URGENT),
        ("hypo_extended_episodes", 1, 0, "HYPO_EXTENDED_EPISODE", RiskTier.HIGH),
        ("time_below_54_pct", 1.0, 0.99, "TBR_54_ABOVE_TARGET", RiskTier.HIGH),
        ("time_below_70_pct", 4.0, 3.99, "TBR_70_ABOVE_TARGET", RiskTier.HIGH),
        ("gri", 60.01, 60.0, "GRI_ZONE_D_OR_E", RiskTier.HIGH),
        ("hba1c_pct", 9.01, 9.0, "HBA1C_POOR_CONTROL", RiskTier.HIGH),
        ("time_in_range_pct", 70.0, 70.01, "TIR_BELOW_TARGET", RiskTier.MODERATE),
        ("time_above_250_pct", 5.0, 4.99, "TAR_250_ABOVE_TARGET", RiskTier.MODERATE),
        ("time_above_180_pct", 25.0, 24.99, "TAR_180_ABOVE_TARGET", RiskTier.MODERATE),
        ("cv_pct", 36.01, 36.0, "CV_ABOVE_TARGET", RiskTier.MODERATE),
        ("gri", 40.01, 40.0, "GRI_ZONE_C", RiskTier.MODERATE),
        ("hba1c_pct", 7.0, 6.99, "HBA1C_ABOVE_GOAL", RiskTier.MODERATE),
        ("cgm_data_sufficient", False, True, "CGM_DATA_INSUFFICIENT", RiskTier.LOW),
    ],
)
def test_each_rule_at_its_boundary(field: str, fires: Any, quiet: Any, code: str, tier: RiskTier) -> None:
    fired = assess_tier(replace(UserMetrics(), **{field: fires}))
    assert [r.code for r in fired.reasons] == [code]
    assert fired.tier is tier
    assert fired.reasons[0].tier is tier
    assert fired.reasons[0].source in SOURCES.values()
    assert code not in codes(replace(UserMetrics(), **{field: quiet}))


def test_gri_zone_e_is_high_too() -> None:
    assert codes(UserMetrics(gri=95)) == ["GRI_ZONE_D_OR_E"]


@pytest.mark.parametrize(
    ("guideline", "systolic", "diastolic", "code"),
    [
        (BpGuideline.ACC_AHA_2017, 119, 79, None),
        (BpGuideline.ACC_AHA_2017, 120, 79, "BP_MEAN_ABOVE_NORMAL"),
        (BpGuideline.ACC_AHA_2017, 135, 85, "BP_MEAN_ABOVE_NORMAL"),
        (BpGuideline.ACC_AHA_2017, 140, 85, "BP_MEAN_HYPERTENSION"),
        (BpGuideline.ESC_ESH_2018, 128, 83, None),  # ESC "normal"
        (BpGuideline.ESC_ESH_2018, 130, 83, "BP_MEAN_ABOVE_NORMAL"),
        (BpGuideline.ESC_ESH_2018, 135, 90, "BP_MEAN_HYPERTENSION"),
        (BpGuideline.KSH_2018, 125, 75, "BP_MEAN_ABOVE_NORMAL"),
        (BpGuideline.KSH_2018, 145, 85, "BP_MEAN_HYPERTENSION"),
        (BpGuideline.KSH_2018, 181, 100, "BP_MEAN_CRISIS"),
    ],
)
def test_bp_mean_rules_follow_the_chosen_guideline(
    guideline: BpGuideline, systolic: float, diastolic: float, code: str | None
) -> None:
    metrics = UserMetrics(bp_mean_7d_systolic_mmhg=systolic, bp_mean_7d_diastolic_mmhg=diastolic)
    found = codes(metrics, bp_guideline=guideline)
    assert found == ([] if code is None else [code])


def test_bp_hypertension_reason_cites_the_guideline_and_names_the_category() -> None:
    metrics = UserMetrics(bp_mean_7d_systolic_mmhg=165, bp_mean_7d_diastolic_mmhg=95)
    [reason] = assess_tier(metrics, bp_guideline=BpGuideline.ESC_ESH_2018).reasons
    assert "Grade 2 hypertension" in reason.text
    assert "10.1093/eurheartj/ehy339" in reason.source
    assert reason.tier is RiskTier.HIGH


def test_bp_needs_both_means() -> None:
    with pytest.raises(ValueError, match="bp_mean_7d_diastolic_mmhg"):
        assess_tier(UserMetrics(bp_mean_7d_systolic_mmhg=150))


def test_invalid_gri_is_refused() -> None:
    with pytest.raises(ValueError, match="gri_value"):
        assess_tier(UserMetrics(gri=120))


def test_overall_tier_is_the_highest_and_reasons_are_ordered() -> None:
    metrics = UserMetrics(
        time_in_range_pct=55,
        time_below_54_pct=2,
        hypo_level_2_episodes=3,
        cgm_data_sufficient=False,
        hba1c_pct=7.5,
        bp_mean_7d_systolic_mmhg=150,
        bp_mean_7d_diastolic_mmhg=95,
    )
    result = assess_tier(metrics)
    assert result.tier is RiskTier.URGENT
    assert [r.code for r in result.reasons] == [
        "HYPO_LEVEL_2_EPISODE",
        "TBR_54_ABOVE_TARGET",
        "BP_MEAN_HYPERTENSION",
        "TIR_BELOW_TARGET",
        "HBA1C_ABOVE_GOAL",
        "CGM_DATA_INSUFFICIENT",
    ]
    ranks = [r.tier.rank for r in result.reasons]
    assert ranks == sorted(ranks, reverse=True)
    assert "3 level 2" in result.reasons[0].text


def test_thresholds_can_be_changed() -> None:
    older_adult = TierThresholds(time_below_70_target_below_pct=1.0, time_in_range_target_above_pct=50.0)
    metrics = UserMetrics(time_below_70_pct=2.0, time_in_range_pct=60.0)
    assert codes(metrics) == ["TIR_BELOW_TARGET"]
    assert codes(metrics, thresholds=older_adult) == ["TBR_70_ABOVE_TARGET"]


def test_tier_order() -> None:
    assert [t.rank for t in RiskTier] == [0, 1, 2, 3]
