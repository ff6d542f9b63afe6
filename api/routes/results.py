"""Results: the summary (risk tier, latest readings with their categories), glucose metrics, days and weeks.

Everything here reads what the stream worker stored (derived tables) or the raw readings it wrote; nothing is
recomputed from scratch per request except the per-day glucose and BP means, which SQL takes from the raw rows.
Each route exists under /v1/me and, for clinicians with a grant and admins, under /v1/users/{user_id}.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, Field
from sqlalchemy import Connection

from api.access import SharedRoutes, SubjectDep
from api.categories import GlucoseRange, glucose_categories
from api.deps import EngineDep, SettingsDep
from api.errors import ErrorResponse, invalid, not_found
from api.zones import ZoneDep, local_today
from schemas.derived import RiskTier, TierReason
from storage import queries
from storage.profiles import get_profile
from streams.metrics import (
    BpDisplayLevel,
    BpGuideline,
    FastingCategory,
    Hba1cCategory,
    classify_bp,
    classify_hba1c,
    hba1c_pct_to_mmol_mol,
)

routes = SharedRoutes("results")
routers = routes.routers

#: Longest range /daily answers in one request, and /weekly's (in days).
MAX_DAILY_DAYS = 366
MAX_WEEKLY_DAYS = 5 * 366
DEFAULT_DAILY_DAYS = 14
DEFAULT_WEEKS = 12


class RiskTierOut(BaseModel):
    tier: RiskTier
    as_of: datetime = Field(description="Event time of the reading that set it.")
    reasons: list[TierReason]


class GlucoseLatest(BaseModel):
    glucose_mg_dl: float
    occurred_at: datetime
    kind: str = Field(description="cgm, fingerstick or lab.")
    meal_context: str
    trend: str | None
    range: GlucoseRange = Field(description="Consensus range: < 54, 54-69, 70-180, 181-250, > 250 mg/dL.")
    fasting_category: FastingCategory | None = Field(description="ADA fasting category; fasting readings only.")
    in_meal_target: bool | None = Field(
        description="Before a meal: 80-130 mg/dL; after a meal: < 180 mg/dL (ADA); other readings: null.")


class BloodPressureLatest(BaseModel):
    systolic_mmhg: float
    diastolic_mmhg: float
    pulse_bpm: int | None
    occurred_at: datetime
    guideline: BpGuideline
    category: str = Field(description="The guideline's category (the higher of systolic and diastolic).")
    display_level: BpDisplayLevel
    crisis: bool = Field(description="Systolic > 180 and/or diastolic > 120 mmHg.")
    isolated_systolic_hypertension: bool | None


class HbA1cLatest(BaseModel):
    hba1c_pct: float
    hba1c_mmol_mol: float | None
    occurred_at: datetime
    category: Hba1cCategory


class Summary(BaseModel):
    user_id: str
    risk_tier: RiskTierOut | None = Field(description="Null before the first assessment.")
    glucose: GlucoseLatest | None
    blood_pressure: BloodPressureLatest | None
    hba1c: HbA1cLatest | None


GuidelineQuery = Annotated[BpGuideline | None, Query(
    description="Classify blood pressure by this guideline. Default: the user's profile's (GET /v1/me/profile), "
                "else the deployment's (VITALSTREAM_BP_GUIDELINE).")]


def _stored_guideline(connection: Connection, user_id: str) -> BpGuideline | None:
    profile = get_profile(connection, user_id)
    # Two enums of the same values: the contract's (schemas.derived) and the classifier's (streams.metrics).
    return BpGuideline(profile.bp_guideline.value) if profile is not None and profile.bp_guideline else None


@routes.get("/summary", summary="Current risk tier with its reasons; latest glucose, blood pressure and HbA1c, "
                                "each with its category")
def summary(subject: SubjectDep, engine: EngineDep, settings: SettingsDep,
            bp_guideline: GuidelineQuery = None) -> Summary:
    with engine.connect() as connection:
        guideline = bp_guideline or _stored_guideline(connection, subject.user_id) or BpGuideline(settings.bp_guideline)
        tier = queries.latest_risk_tier(connection, subject.user_id)
        glucose = queries.latest_glucose(connection, subject.user_id)
        bp = queries.latest_blood_pressure(connection, subject.user_id)
        hba1c = queries.latest_hba1c(connection, subject.user_id)
    result = Summary(user_id=subject.user_id, risk_tier=None, glucose=None, blood_pressure=None, hba1c=None)
    if tier is not None:
        result.risk_tier = RiskTierOut(tier=RiskTier(tier.tier), as_of=tier.as_of,
                                       reasons=[TierReason.model_validate(r) for r in tier.reasons])
    if glucose is not None:
        categories = glucose_categories(glucose.glucose_mg_dl, glucose.meal_context)
        result.glucose = GlucoseLatest(
            glucose_mg_dl=glucose.glucose_mg_dl, occurred_at=glucose.occurred_at, kind=glucose.kind,
            meal_context=glucose.meal_context, trend=glucose.trend, range=categories.range,
            fasting_category=categories.fasting, in_meal_target=categories.in_meal_target)
    if bp is not None:
        classified = classify_bp(bp.systolic_mmhg, bp.diastolic_mmhg, guideline=guideline)
        result.blood_pressure = BloodPressureLatest(
            systolic_mmhg=bp.systolic_mmhg, diastolic_mmhg=bp.diastolic_mmhg, pulse_bpm=bp.pulse_bpm,
            occurred_at=bp.occurred_at, guideline=guideline, category=classified.category.value,
            display_level=classified.display_level, crisis=classified.crisis,
            isolated_systolic_hypertension=classified.isolated_systolic_hypertension)
    if hba1c is not None:
        # Below 2.15 % the IFCC value would be negative: no such lab result, but the contract allows it.
        mmol_mol = hba1c_pct_to_mmol_mol(hba1c.hba1c_pct) if hba1c.hba1c_pct > 2.15 else None
        result.hba1c = HbA1cLatest(hba1c_pct=hba1c.hba1c_pct, hba1c_mmol_mol=mmol_mol,
                                   occurred_at=hba1c.occurred_at, category=classify_hba1c(hba1c.hba1c_pct))
    return result


class GlucoseMetrics(BaseModel):
    """One glucose_metrics row: the window's CGM metrics as of its newest reading."""

    window: str
    as_of: datetime
    window_start: datetime
    readings: int
    mean_mg_dl: float | None
    sd_mg_dl: float | None
    cv_pct: float | None
    gmi_pct: float | None
    tir_pct: float | None = Field(description="Time in range, 70-180 mg/dL.")
    tbr70_pct: float | None
    tbr54_pct: float | None
    tar180_pct: float | None
    tar250_pct: float | None
    lbgi: float | None
    hbgi: float | None
    gri: float | None
    gri_zone: str | None
    readings_present_pct: float | None = Field(description="Share of the window's expected readings present.")
    sufficient: bool = Field(description="Enough data for the metrics to be reported (consensus: >= 70 %).")


@routes.get("/metrics/glucose", summary="Latest CGM metrics of a rolling window (TIR, GMI, CV, GRI, …)",
            responses={404: {"model": ErrorResponse, "description": "No metrics for this window yet"}})
def glucose_metrics(subject: SubjectDep, engine: EngineDep,
                    window: Annotated[Literal["14d", "24h"], Query(description="Rolling window.")] = "14d",
                    ) -> GlucoseMetrics:
    with engine.connect() as connection:
        row = queries.latest_glucose_metrics(connection, subject.user_id, window)
    if row is None:
        raise not_found(f"no glucose metrics for the {window} window yet (they follow the first CGM readings)")
    return GlucoseMetrics.model_validate(dict(row._mapping))


class Day(BaseModel):
    day: date = Field(description="Calendar day in the user's zone.")
    energy_kcal: float | None
    carbs_g: float | None
    protein_g: float | None
    fat_g: float | None
    meals: int | None
    exercise_min: float | None
    exercise_kcal: float | None
    steps: int | None
    glucose_readings: int
    glucose_mean_mg_dl: float | None
    glucose_tir_pct: float | None = Field(description="Share of the day's glucose readings within 70-180 mg/dL.")
    bp_readings: int
    bp_mean_systolic_mmhg: float | None
    bp_mean_diastolic_mmhg: float | None


class Days(BaseModel):
    time_zone: str
    first_day: date
    last_day: date
    days: list[Day] = Field(description="Days with totals or readings, oldest first; days without any are left out.")


FromQuery = Annotated[date | None, Query(alias="from", description="First day (inclusive), in the user's zone.")]
ToQuery = Annotated[date | None, Query(alias="to", description="Last day (inclusive); default today.")]


def _range(first: date | None, last: date | None, zone: str, default_days: int, max_days: int) -> tuple[date, date]:
    last = last or local_today(zone)
    first = first or last - timedelta(days=default_days - 1)
    if first > last:
        raise invalid("query.from", "from_not_after_to", f"from ({first}) is after to ({last})")
    if (last - first).days + 1 > max_days:
        raise invalid("query.from", "range_too_long", f"at most {max_days} days per request")
    return first, last


@routes.get("/daily", summary="Per local day: meal and exercise totals, glucose mean and time in range, BP means")
def daily(subject: SubjectDep, engine: EngineDep, zone: ZoneDep, first: FromQuery = None,
          last: ToQuery = None) -> Days:
    first_day, last_day = _range(first, last, zone, DEFAULT_DAILY_DAYS, MAX_DAILY_DAYS)
    with engine.connect() as connection:
        rows = queries.daily_summaries(connection, subject.user_id, first_day, last_day, zone)
    return Days(time_zone=zone, first_day=first_day, last_day=last_day,
                days=[Day.model_validate(dict(row._mapping)) for row in rows])


class Week(BaseModel):
    iso_year: int
    iso_week: int
    week_start: date = Field(description="The week's Monday.")
    days: int = Field(description="Days of the week with stored totals.")
    energy_kcal: float
    carbs_g: float
    protein_g: float
    fat_g: float
    meals: int
    exercise_min: float
    exercise_kcal: float
    steps: int
    glucose_readings: int
    bp_readings: int


class Weeks(BaseModel):
    first_day: date
    last_day: date
    weeks: list[Week]


@routes.get("/weekly", summary="Per ISO week (Monday first): sums of the daily totals")
def weekly(subject: SubjectDep, engine: EngineDep, zone: ZoneDep, first: FromQuery = None,
           last: ToQuery = None) -> Weeks:
    last_day = last or local_today(zone)
    if first is None:  # whole weeks: from the Monday DEFAULT_WEEKS - 1 weeks before this one
        first = last_day - timedelta(days=last_day.weekday(), weeks=DEFAULT_WEEKS - 1)
    first_day, last_day = _range(first, last_day, zone, DEFAULT_WEEKS * 7, MAX_WEEKLY_DAYS)
    with engine.connect() as connection:
        rows = queries.weekly_summaries(connection, subject.user_id, first_day, last_day)
    return Weeks(first_day=first_day, last_day=last_day, weeks=[Week.model_validate(dict(r._mapping)) for r in rows])
