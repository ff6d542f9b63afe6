"""Read queries behind the API's results: latest values, derived rows, per-day and per-week summaries, AGP, pages.

Every query is for one user and bounded in time, so it walks the (user_id, occurred_at, event_id) key of the
raw hypertables (or the derived tables' keys), never a whole table. Local days use the IANA zone the caller
passes; PostgreSQL's `AT TIME ZONE` applies its rules, daylight-saving changes included.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import Column, Connection, Row, Table, select, text, tuple_

from storage.tables import (
    blood_pressure_readings,
    daily_totals,
    exercise_sessions,
    glucose_metrics,
    glucose_readings,
    hba1c_results,
    meals,
    risk_tiers,
)
from streams.metrics.cgm import TIR_HIGH_MG_DL, TIR_LOW_MG_DL

#: AGP percentiles, in the order agp_bins returns them.
AGP_QUANTILES = (0.05, 0.25, 0.50, 0.75, 0.95)
#: A local day lies within this much of its UTC date, whatever the zone (offsets run from -12 h to +14 h).
_ZONE_SLACK = timedelta(days=2)


class ReadingKind(StrEnum):
    """The raw tables a client can page through."""

    GLUCOSE = "glucose"
    BP = "bp"
    HBA1C = "hba1c"
    EXERCISE = "exercise"
    MEALS = "meals"


READING_TABLES: dict[ReadingKind, Table] = {
    ReadingKind.GLUCOSE: glucose_readings,
    ReadingKind.BP: blood_pressure_readings,
    ReadingKind.HBA1C: hba1c_results,
    ReadingKind.EXERCISE: exercise_sessions,
    ReadingKind.MEALS: meals,
}
# Where a meal photo is kept is an internal detail; clients see its hash and type.
_HIDDEN_COLUMNS = frozenset({"user_id", "photo_object_key", "received_at"})


def _latest(connection: Connection, table: Table, user_id: str) -> Row[Any] | None:
    return connection.execute(
        select(table).where(table.c.user_id == user_id)
        .order_by(table.c.occurred_at.desc(), table.c.event_id.desc()).limit(1)).first()


def latest_glucose(connection: Connection, user_id: str) -> Row[Any] | None:
    return _latest(connection, glucose_readings, user_id)


def latest_blood_pressure(connection: Connection, user_id: str) -> Row[Any] | None:
    return _latest(connection, blood_pressure_readings, user_id)


def latest_hba1c(connection: Connection, user_id: str) -> Row[Any] | None:
    return _latest(connection, hba1c_results, user_id)


def latest_risk_tier(connection: Connection, user_id: str) -> Row[Any] | None:
    """The newest risk_tiers row (tier, reasons, as_of), or None before the first assessment."""
    return connection.execute(select(risk_tiers).where(risk_tiers.c.user_id == user_id)
                              .order_by(risk_tiers.c.as_of.desc()).limit(1)).first()


def latest_glucose_metrics(connection: Connection, user_id: str, window: str) -> Row[Any] | None:
    """The newest glucose_metrics row of a window ('24h' or '14d')."""
    return connection.execute(
        select(glucose_metrics).where(glucose_metrics.c.user_id == user_id, glucose_metrics.c.window == window)
        .order_by(glucose_metrics.c.as_of_hour.desc()).limit(1)).first()


def recorded_time_zone(connection: Connection, user_id: str) -> str | None:
    """The zone the stream worker last counted the user's days in (their profile's), if it has counted any."""
    zone: str | None = connection.execute(
        select(daily_totals.c.time_zone).where(daily_totals.c.user_id == user_id)
        .order_by(daily_totals.c.day.desc()).limit(1)).scalar_one_or_none()
    return zone


# -- per day and per week -----------------------------------------------------------------------------------------
_DAILY = """
WITH t AS (
    SELECT * FROM daily_totals WHERE user_id = :user_id AND day BETWEEN :first_day AND :last_day
), g AS (
    SELECT (occurred_at AT TIME ZONE :zone)::date AS day, count(*) AS n, avg(glucose_mg_dl) AS mean_mg_dl,
           100.0 * count(*) FILTER (WHERE glucose_mg_dl BETWEEN :tir_low AND :tir_high) / count(*) AS tir_pct
    FROM glucose_readings
    WHERE user_id = :user_id AND occurred_at >= :scan_start AND occurred_at < :scan_end
      AND (occurred_at AT TIME ZONE :zone)::date BETWEEN :first_day AND :last_day
    GROUP BY 1
), b AS (
    SELECT (occurred_at AT TIME ZONE :zone)::date AS day, count(*) AS n,
           avg(systolic_mmhg) AS systolic_mmhg, avg(diastolic_mmhg) AS diastolic_mmhg
    FROM blood_pressure_readings
    WHERE user_id = :user_id AND occurred_at >= :scan_start AND occurred_at < :scan_end
      AND (occurred_at AT TIME ZONE :zone)::date BETWEEN :first_day AND :last_day
    GROUP BY 1
)
SELECT coalesce(t.day, g.day, b.day) AS day,
       t.energy_kcal, t.carbs_g, t.protein_g, t.fat_g, t.meals, t.exercise_min, t.exercise_kcal, t.steps,
       coalesce(g.n, 0) AS glucose_readings, g.mean_mg_dl AS glucose_mean_mg_dl, g.tir_pct AS glucose_tir_pct,
       coalesce(b.n, 0) AS bp_readings, b.systolic_mmhg AS bp_mean_systolic_mmhg,
       b.diastolic_mmhg AS bp_mean_diastolic_mmhg
FROM t
FULL JOIN g ON g.day = t.day
FULL JOIN b ON b.day = coalesce(t.day, g.day)
ORDER BY 1
"""


def daily_summaries(connection: Connection, user_id: str, first_day: date, last_day: date,
                    zone: str) -> list[Row[Any]]:
    """Days in [first_day, last_day] that have totals or readings: the stored daily totals beside the day's
    glucose mean and time in range (70-180 mg/dL, every glucose reading of that local day) and BP means."""
    # A UTC range that surely holds the local days, so the scan stays on the key; the date test is exact.
    scan_start = datetime.combine(first_day, time(0), tzinfo=UTC) - _ZONE_SLACK
    scan_end = datetime.combine(last_day, time(0), tzinfo=UTC) + timedelta(days=1) + _ZONE_SLACK
    return list(connection.execute(text(_DAILY), {
        "user_id": user_id, "first_day": first_day, "last_day": last_day, "zone": zone,
        "tir_low": TIR_LOW_MG_DL, "tir_high": TIR_HIGH_MG_DL, "scan_start": scan_start, "scan_end": scan_end,
    }))


_WEEKLY = """
SELECT extract(isoyear FROM day)::int AS iso_year, extract(week FROM day)::int AS iso_week,
       date_trunc('week', day)::date AS week_start, count(*) AS days,
       sum(energy_kcal) AS energy_kcal, sum(carbs_g) AS carbs_g, sum(protein_g) AS protein_g, sum(fat_g) AS fat_g,
       sum(meals) AS meals, sum(exercise_min) AS exercise_min, sum(exercise_kcal) AS exercise_kcal,
       sum(steps) AS steps, sum(glucose_readings) AS glucose_readings, sum(bp_readings) AS bp_readings
FROM daily_totals
WHERE user_id = :user_id AND day BETWEEN :first_day AND :last_day
GROUP BY 1, 2, 3
ORDER BY 1, 2
"""


def weekly_summaries(connection: Connection, user_id: str, first_day: date, last_day: date) -> list[Row[Any]]:
    """ISO weeks (Monday first) of the stored daily totals in [first_day, last_day]: sums, and how many days."""
    return list(connection.execute(text(_WEEKLY), {"user_id": user_id, "first_day": first_day,
                                                  "last_day": last_day}))


# -- ambulatory glucose profile -----------------------------------------------------------------------------------
def newest_cgm_at(connection: Connection, user_id: str) -> datetime | None:
    newest: datetime | None = connection.execute(
        select(glucose_readings.c.occurred_at)
        .where(glucose_readings.c.user_id == user_id, glucose_readings.c.kind == "cgm")
        .order_by(glucose_readings.c.occurred_at.desc()).limit(1)).scalar_one_or_none()
    return newest


_AGP = """
SELECT floor(extract(epoch FROM (occurred_at AT TIME ZONE :zone)::time) / :bin_s)::int AS bin,
       count(*) AS readings,
       percentile_cont(CAST(:quantiles AS float8[])) WITHIN GROUP (ORDER BY glucose_mg_dl) AS percentiles
FROM glucose_readings
WHERE user_id = :user_id AND kind = 'cgm' AND occurred_at > :start AND occurred_at <= :end
GROUP BY 1
ORDER BY 1
"""


@dataclass(frozen=True, slots=True)
class AgpBin:
    """One time-of-day bin: its index (bin * bin minutes = minutes after local midnight), count, percentiles."""

    bin: int
    readings: int
    percentiles_mg_dl: tuple[float, ...]


def agp_bins(connection: Connection, user_id: str, start: datetime, end: datetime, zone: str,
             bin_minutes: int) -> list[AgpBin]:
    """CGM readings in (start, end], binned by local time of day: the AGP_QUANTILES of each bin, interpolated
    linearly between readings (percentile_cont; numpy.percentile's default gives the same)."""
    rows = connection.execute(text(_AGP), {"user_id": user_id, "start": start, "end": end, "zone": zone,
                                           "bin_s": bin_minutes * 60, "quantiles": list(AGP_QUANTILES)})
    return [AgpBin(bin=r.bin, readings=r.readings, percentiles_mg_dl=tuple(r.percentiles)) for r in rows]


# -- pages of raw rows --------------------------------------------------------------------------------------------
def public_columns(kind: ReadingKind) -> list[Column[Any]]:
    return [c for c in READING_TABLES[kind].columns if c.name not in _HIDDEN_COLUMNS]


def readings_page(connection: Connection, kind: ReadingKind, user_id: str, before: tuple[datetime, UUID] | None,
                  limit: int) -> Sequence[Row[Any]]:
    """Up to `limit` rows, newest first, strictly before the (occurred_at, event_id) key `before` when given.

    Keyset pagination: the row-value comparison follows the primary key, so every page costs the same.
    """
    table = READING_TABLES[kind]
    query = select(*public_columns(kind)).where(table.c.user_id == user_id)
    if before is not None:
        query = query.where(tuple_(table.c.occurred_at, table.c.event_id) < tuple_(*before))
    return connection.execute(
        query.order_by(table.c.occurred_at.desc(), table.c.event_id.desc()).limit(limit)).all()
