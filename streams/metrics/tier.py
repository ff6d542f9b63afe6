"""Per-user overall risk tier (low / moderate / high / urgent) with the reasons that set it.

The tier is the highest tier of any rule that fires; no rule firing means LOW. Every metric is optional and
a rule whose inputs are missing does not fire. Targets are the general-adult ones (older or high-risk
people have stricter TBR and looser TIR targets in Battelino 2019; pass other TierThresholds for them).

| code                     | fires when                                   | tier     | source                       |
|--------------------------|----------------------------------------------|----------|------------------------------|
| HYPO_LEVEL_2_EPISODE     | >= 1 level 2 hypoglycaemia episode           | urgent   | ADA SoC 2025 sec. 6          |
| BP_CRISIS_READING        | >= 1 reading > 180 and/or > 120 mmHg         | urgent   | ACC/AHA 2017 sec. 11.2       |
| BP_MEAN_CRISIS           | 7-day mean > 180 and/or > 120 mmHg           | urgent   | ACC/AHA 2017 sec. 11.2       |
| HYPO_EXTENDED_EPISODE    | >= 1 extended hypoglycaemia episode          | high     | Battelino 2023               |
| TBR_54_ABOVE_TARGET      | time < 54 mg/dL >= 1 % (target < 1 %)        | high     | Battelino 2019               |
| TBR_70_ABOVE_TARGET      | time < 70 mg/dL >= 4 % (target < 4 %)        | high     | Battelino 2019               |
| GRI_ZONE_D_OR_E          | GRI > 60                                     | high     | Klonoff 2022                 |
| BP_MEAN_HYPERTENSION     | 7-day mean in the guideline's "danger" level | high     | chosen BP guideline          |
| HBA1C_POOR_CONTROL       | HbA1c > 9.0 %                                | high     | NCQA HEDIS GSD / CMS122      |
| TIR_BELOW_TARGET         | time in 70-180 <= 70 % (target > 70 %)       | moderate | Battelino 2019               |
| TAR_250_ABOVE_TARGET     | time > 250 mg/dL >= 5 % (target < 5 %)       | moderate | Battelino 2019               |
| TAR_180_ABOVE_TARGET     | time > 180 mg/dL >= 25 % (target < 25 %)     | moderate | Battelino 2019               |
| CV_ABOVE_TARGET          | CV > 36 % (target <= 36 %)                   | moderate | Battelino 2019               |
| GRI_ZONE_C               | 40 < GRI <= 60                               | moderate | Klonoff 2022                 |
| BP_MEAN_ABOVE_NORMAL     | 7-day mean in the "borderline" level         | moderate | chosen BP guideline          |
| HBA1C_ABOVE_GOAL         | 7.0 <= HbA1c <= 9.0 % (goal < 7 %)           | moderate | ADA SoC 2025 sec. 6          |
| CGM_DATA_INSUFFICIENT    | < 70 % of 14 days of CGM data                | low      | Battelino 2019               |

Each comparison follows its source's wording: a target "< 4 %" is missed at 4 %, a target "> 70 %" at 70 %.
CGM_DATA_INSUFFICIENT is informational: the CGM rules still run, since hiding a real low is worse than
flagging it from thin data.
Source: the per-rule sources above (full citations in SOURCES).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from streams.metrics.bp import BpDisplayLevel, BpGuideline, classify_bp
from streams.metrics.gri import GriZone, gri_zone


class RiskTier(StrEnum):
    """Overall tier, in increasing order of concern."""

    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def rank(self) -> int:
        return list(RiskTier).index(self)


SOURCES: dict[str, str] = {
    "battelino_2019": "Battelino et al. 2019, Diabetes Care 42:1593, doi 10.2337/dci19-0028",
    "battelino_2023": "Battelino et al. 2023, Lancet Diabetes Endocrinol 11:42, doi 10.1016/S2213-8587(22)00319-9",
    "ada_2025_s6": "ADA Standards of Care 2025, section 6 (glycemic goals, hypoglycemia), doi 10.2337/dc25-S006",
    "klonoff_2022": "Klonoff et al. 2022, J Diabetes Sci Technol, doi 10.1177/19322968221085273",
    "acc_aha_2017": "Whelton et al. 2017 ACC/AHA guideline, doi 10.1161/HYP.0000000000000065",
    "esc_esh_2018": "Williams et al. 2018 ESC/ESH guidelines, doi 10.1093/eurheartj/ehy339",
    "ksh_2018": "2018 Korean Society of Hypertension guidelines, part I, doi 10.1186/s40885-019-0121-0",
    "hedis_gsd": "NCQA HEDIS Glycemic Status Assessment (GSD) and CMS122: poor control is > 9.0 %",
}
_BP_SOURCE_KEY = {
    BpGuideline.ACC_AHA_2017: "acc_aha_2017",
    BpGuideline.ESC_ESH_2018: "esc_esh_2018",
    BpGuideline.KSH_2018: "ksh_2018",
}


@dataclass(frozen=True, slots=True)
class TierThresholds:
    """Rule thresholds; defaults are the general-adult consensus targets named in the module table."""

    time_below_54_target_below_pct: float = 1.0
    time_below_70_target_below_pct: float = 4.0
    time_in_range_target_above_pct: float = 70.0
    time_above_250_target_below_pct: float = 5.0
    time_above_180_target_below_pct: float = 25.0
    cv_target_max_pct: float = 36.0
    hba1c_goal_below_pct: float = 7.0
    hba1c_poor_control_above_pct: float = 9.0


DEFAULT_THRESHOLDS = TierThresholds()


@dataclass(frozen=True, slots=True)
class UserMetrics:
    """A user's current metrics; any may be unknown (None). Percentages are % of CGM readings."""

    time_in_range_pct: float | None = None
    time_below_70_pct: float | None = None
    time_below_54_pct: float | None = None
    time_above_180_pct: float | None = None
    time_above_250_pct: float | None = None
    cv_pct: float | None = None
    gri: float | None = None
    hypo_level_2_episodes: int | None = None
    hypo_extended_episodes: int | None = None
    cgm_data_sufficient: bool | None = None
    hba1c_pct: float | None = None
    bp_crisis_readings: int | None = None
    bp_mean_7d_systolic_mmhg: float | None = None
    bp_mean_7d_diastolic_mmhg: float | None = None


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a tier was reached: a stable code, a short human text, and the source of the rule."""

    code: str
    tier: RiskTier
    text: str
    source: str


@dataclass(frozen=True, slots=True)
class TierAssessment:
    """The overall tier and the reasons behind it, highest tier first."""

    tier: RiskTier
    reasons: tuple[Reason, ...]


def _reason(code: str, tier: RiskTier, text: str, source_key: str) -> Reason:
    return Reason(code=code, tier=tier, text=text, source=SOURCES[source_key])


def _glycaemia_reasons(m: UserMetrics, t: TierThresholds) -> Iterator[Reason]:
    if m.hypo_level_2_episodes is not None and m.hypo_level_2_episodes >= 1:
        yield _reason(
            "HYPO_LEVEL_2_EPISODE",
            RiskTier.URGENT,
            f"{m.hypo_level_2_episodes} level 2 hypoglycaemia episode(s) (< 54 mg/dL for >= 15 min)",
            "ada_2025_s6",
        )
    if m.hypo_extended_episodes is not None and m.hypo_extended_episodes >= 1:
        yield _reason(
            "HYPO_EXTENDED_EPISODE",
            RiskTier.HIGH,
            f"{m.hypo_extended_episodes} extended hypoglycaemia episode(s) (< 70 mg/dL for > 120 min)",
            "battelino_2023",
        )
    if m.time_below_54_pct is not None and m.time_below_54_pct >= t.time_below_54_target_below_pct:
        yield _reason(
            "TBR_54_ABOVE_TARGET",
            RiskTier.HIGH,
            f"Time below 54 mg/dL is {m.time_below_54_pct:.1f} % (target < {t.time_below_54_target_below_pct:g} %)",
            "battelino_2019",
        )
    if m.time_below_70_pct is not None and m.time_below_70_pct >= t.time_below_70_target_below_pct:
        yield _reason(
            "TBR_70_ABOVE_TARGET",
            RiskTier.HIGH,
            f"Time below 70 mg/dL is {m.time_below_70_pct:.1f} % (target < {t.time_below_70_target_below_pct:g} %)",
            "battelino_2019",
        )
    if m.time_in_range_pct is not None and m.time_in_range_pct <= t.time_in_range_target_above_pct:
        yield _reason(
            "TIR_BELOW_TARGET",
            RiskTier.MODERATE,
            f"Time in 70-180 mg/dL is {m.time_in_range_pct:.1f} % (target > {t.time_in_range_target_above_pct:g} %)",
            "battelino_2019",
        )
    if m.time_above_250_pct is not None and m.time_above_250_pct >= t.time_above_250_target_below_pct:
        yield _reason(
            "TAR_250_ABOVE_TARGET",
            RiskTier.MODERATE,
            f"Time above 250 mg/dL is {m.time_above_250_pct:.1f} % (target < {t.time_above_250_target_below_pct:g} %)",
            "battelino_2019",
        )
    if m.time_above_180_pct is not None and m.time_above_180_pct >= t.time_above_180_target_below_pct:
        yield _reason(
            "TAR_180_ABOVE_TARGET",
            RiskTier.MODERATE,
            f"Time above 180 mg/dL is {m.time_above_180_pct:.1f} % (target < {t.time_above_180_target_below_pct:g} %)",
            "battelino_2019",
        )
    if m.cv_pct is not None and m.cv_pct > t.cv_target_max_pct:
        yield _reason(
            "CV_ABOVE_TARGET",
            RiskTier.MODERATE,
            f"Glucose variability (CV) is {m.cv_pct:.1f} % (target <= {t.cv_target_max_pct:g} %)",
            "battelino_2019",
        )
    if m.gri is not None:
        zone = gri_zone(m.gri)
        if zone in (GriZone.D, GriZone.E):
            text = f"Glycemia Risk Index {m.gri:.0f} is in zone {zone} (of A-E)"
            yield _reason("GRI_ZONE_D_OR_E", RiskTier.HIGH, text, "klonoff_2022")
        elif zone is GriZone.C:
            text = f"Glycemia Risk Index {m.gri:.0f} is in zone C (of A-E)"
            yield _reason("GRI_ZONE_C", RiskTier.MODERATE, text, "klonoff_2022")
    if m.cgm_data_sufficient is False:
        yield _reason(
            "CGM_DATA_INSUFFICIENT",
            RiskTier.LOW,
            "Less than 70 % of 14 days of CGM data: CGM figures may not be representative",
            "battelino_2019",
        )


def _hba1c_reasons(m: UserMetrics, t: TierThresholds) -> Iterator[Reason]:
    if m.hba1c_pct is None:
        return
    if m.hba1c_pct > t.hba1c_poor_control_above_pct:
        text = f"HbA1c {m.hba1c_pct:.1f} % (poor control above {t.hba1c_poor_control_above_pct:g} %)"
        yield _reason("HBA1C_POOR_CONTROL", RiskTier.HIGH, text, "hedis_gsd")
    elif m.hba1c_pct >= t.hba1c_goal_below_pct:
        text = f"HbA1c {m.hba1c_pct:.1f} % (goal < {t.hba1c_goal_below_pct:g} % for many adults)"
        yield _reason("HBA1C_ABOVE_GOAL", RiskTier.MODERATE, text, "ada_2025_s6")


def _bp_reasons(m: UserMetrics, guideline: BpGuideline) -> Iterator[Reason]:
    if m.bp_crisis_readings is not None and m.bp_crisis_readings >= 1:
        text = f"{m.bp_crisis_readings} blood pressure reading(s) in the crisis range (> 180 and/or > 120 mmHg)"
        yield _reason("BP_CRISIS_READING", RiskTier.URGENT, text, "acc_aha_2017")
    systolic, diastolic = m.bp_mean_7d_systolic_mmhg, m.bp_mean_7d_diastolic_mmhg
    if systolic is None and diastolic is None:
        return
    if systolic is None or diastolic is None:
        missing = "bp_mean_7d_systolic_mmhg" if systolic is None else "bp_mean_7d_diastolic_mmhg"
        raise ValueError(f"{missing}: both 7-day means are needed to classify blood pressure")
    result = classify_bp(systolic, diastolic, guideline=guideline)
    mean = f"7-day mean blood pressure {systolic:.0f}/{diastolic:.0f} mmHg"
    if result.crisis:
        yield _reason("BP_MEAN_CRISIS", RiskTier.URGENT, f"{mean} is in the crisis range", "acc_aha_2017")
    elif result.display_level is BpDisplayLevel.DANGER:
        text = f"{mean}: {result.category.label}"
        yield _reason("BP_MEAN_HYPERTENSION", RiskTier.HIGH, text, _BP_SOURCE_KEY[guideline])
    elif result.display_level is BpDisplayLevel.BORDERLINE:
        text = f"{mean}: {result.category.label}"
        yield _reason("BP_MEAN_ABOVE_NORMAL", RiskTier.MODERATE, text, _BP_SOURCE_KEY[guideline])


def assess_tier(
    metrics: UserMetrics,
    *,
    bp_guideline: BpGuideline = BpGuideline.ACC_AHA_2017,
    thresholds: TierThresholds = DEFAULT_THRESHOLDS,
) -> TierAssessment:
    """Overall tier = highest tier among the rules that fire (module table); LOW when none fires.

    Reasons come highest tier first, in table order within a tier (glucose, then BP, then HbA1c).
    Raises ValueError (naming the field) for a GRI outside [0, 100] or when only one of the two 7-day BP
    means is given; BP values are validated as in bp.classify_bp.
    Source: per rule, see the module table and SOURCES.
    """
    guideline = BpGuideline(bp_guideline)
    reasons = [
        *_glycaemia_reasons(metrics, thresholds),
        *_bp_reasons(metrics, guideline),
        *_hba1c_reasons(metrics, thresholds),
    ]
    reasons.sort(key=lambda reason: -reason.tier.rank)
    tier = reasons[0].tier if reasons else RiskTier.LOW
    return TierAssessment(tier=tier, reasons=tuple(reasons))
