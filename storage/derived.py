"""Writes of the derived tables: every statement is an idempotent upsert of absolute values.

Daily totals are computed here, in SQL, from the raw rows of the user's local day: the raw tables are
deduplicated by event id (their primary key), so a total is right however often an event was delivered,
however late it came and whichever worker wrote it last. The caller passes each day as UTC bounds
[start, end) computed in the user's time zone (streams.days).

A meal's nutrients are those the user entered; one the user left empty comes from the newest analysis of
the meal's photo (table meal_analyses), if there is one. Both are read at computation time, so it does not
matter whether the meal or its analysis arrived first: whichever comes second recomputes the meal's day.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, Table, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import insert

from storage.tables import glucose_metrics, risk_tiers, user_metrics_current

Row = dict[str, Any]
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


@dataclass(frozen=True, slots=True)
class DayKey:
    """One user's calendar day in their zone, as UTC bounds [start, end)."""

    user_id: str
    day: date
    time_zone: str
    start: datetime
    end: datetime


def _array_type(table: Table, column: str) -> str:
    return f"{table.c[column].type.compile(dialect=_DIALECT)}[]"


def _upsert_arrays(connection: Connection, table: Table, rows: Sequence[Row], keys: Sequence[str],
                   where: str = "") -> None:
    """INSERT ... SELECT FROM unnest(one array per column) ON CONFLICT (keys) DO UPDATE every other column.

    One statement and one parameter per column, however many rows: executemany would send a statement per
    row, and a multi-row VALUES list is parsed again for every batch.
    """
    if not rows:
        return
    columns = [c.name for c in table.columns]
    arrays = ", ".join(f"CAST(:{name} AS {_array_type(table, name)})" for name in columns)
    updates = ", ".join(f'"{name}" = EXCLUDED."{name}"' for name in columns if name not in keys)
    quoted = ", ".join(f'"{name}"' for name in columns)
    conflict = ", ".join(f'"{name}"' for name in keys)
    statement = (f"INSERT INTO {table.name} AS current ({quoted}) SELECT * FROM unnest({arrays}) "
                 f"ON CONFLICT ({conflict}) DO UPDATE SET {updates} {where}")
    connection.execute(text(statement), {name: [row[name] for row in rows] for name in columns})


def upsert_glucose_metrics(connection: Connection, rows: Sequence[Row]) -> None:
    """One row per (user, window, as_of_hour); a later computation for the same hour replaces it."""
    _upsert_arrays(connection, glucose_metrics, _last_per_key(rows, ("user_id", "window", "as_of_hour")),
                   ("user_id", "window", "as_of_hour"))


def upsert_user_metrics(connection: Connection, rows: Sequence[Row]) -> None:
    """Current value per (user, metric); a value computed as of an earlier time never replaces a newer one."""
    _upsert_arrays(connection, user_metrics_current, _last_per_key(rows, ("user_id", "metric")),
                   ("user_id", "metric"), where="WHERE EXCLUDED.as_of >= current.as_of")


def _last_per_key(rows: Sequence[Row], keys: Sequence[str]) -> list[Row]:
    # ON CONFLICT cannot touch the same row twice in one statement; the last row for a key wins.
    return list({tuple(row[k] for k in keys): row for row in rows}.values())


def upsert_risk_tiers(connection: Connection, rows: Sequence[Row]) -> None:
    """History rows keyed (user, as_of): a replay rewrites the same row."""
    if not rows:
        return
    statement = insert(risk_tiers)
    connection.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id", "as_of"],
            set_={name: statement.excluded[name] for name in ("tier", "reasons", "event_id")},
        ),
        list(rows),
    )


def meal_nutrient(column: str) -> str:
    """SQL for one meal's nutrient inside the daily-totals query (`m` is the meals row, `estimate` its newest
    analysis): a value the user entered always wins over an estimate."""
    return f"coalesce(m.{column}, estimate.{column})"


#: The newest analysis of meal `m` (none: every column NULL). A re-analysis by newer models (a later received_at)
#: replaces an older one whatever it says: a newer model that sees no food withdraws the older estimate (non-food
#: analyses carry no nutrients). The id breaks ties deterministically.
_MEAL_ESTIMATE = """
LEFT JOIN LATERAL (
    SELECT a.energy_kcal, a.carbs_g, a.protein_g, a.fat_g
    FROM meal_analyses a
    WHERE a.user_id = m.user_id AND a.meal_event_id = m.event_id
    ORDER BY a.received_at DESC, a.event_id DESC
    LIMIT 1
) estimate ON TRUE
"""


_DAILY_TOTALS = f"""
INSERT INTO daily_totals AS d (user_id, day, time_zone, energy_kcal, carbs_g, protein_g, fat_g, meals,
                               exercise_min, exercise_kcal, steps, glucose_readings, bp_readings, updated_at)
SELECT k.user_id, k.day, k.time_zone,
       coalesce(meal.energy_kcal, 0), coalesce(meal.carbs_g, 0), coalesce(meal.protein_g, 0),
       coalesce(meal.fat_g, 0), meal.n,
       coalesce(ex.minutes, 0), coalesce(ex.kcal, 0), coalesce(ex.steps, 0),
       glucose.n, bp.n, :now
FROM unnest(CAST(:user_ids AS text[]), CAST(:days AS date[]), CAST(:zones AS text[]),
            CAST(:starts AS timestamptz[]), CAST(:ends AS timestamptz[]))
     AS k(user_id, day, time_zone, start_at, end_at)
CROSS JOIN LATERAL (
    SELECT sum({meal_nutrient("energy_kcal")}) AS energy_kcal, sum({meal_nutrient("carbs_g")}) AS carbs_g,
           sum({meal_nutrient("protein_g")}) AS protein_g, sum({meal_nutrient("fat_g")}) AS fat_g, count(*) AS n
    FROM meals m
    {_MEAL_ESTIMATE}
    WHERE m.user_id = k.user_id AND m.occurred_at >= k.start_at AND m.occurred_at < k.end_at
) meal
CROSS JOIN LATERAL (
    SELECT sum(x.duration_min) AS minutes, sum(x.energy_kcal) AS kcal, sum(x.steps) AS steps
    FROM exercise_sessions x
    WHERE x.user_id = k.user_id AND x.occurred_at >= k.start_at AND x.occurred_at < k.end_at
) ex
CROSS JOIN LATERAL (
    SELECT count(*) AS n FROM glucose_readings g
    WHERE g.user_id = k.user_id AND g.occurred_at >= k.start_at AND g.occurred_at < k.end_at
) glucose
CROSS JOIN LATERAL (
    SELECT count(*) AS n FROM blood_pressure_readings b
    WHERE b.user_id = k.user_id AND b.occurred_at >= k.start_at AND b.occurred_at < k.end_at
) bp
ON CONFLICT (user_id, day) DO UPDATE SET
    time_zone = EXCLUDED.time_zone, energy_kcal = EXCLUDED.energy_kcal, carbs_g = EXCLUDED.carbs_g,
    protein_g = EXCLUDED.protein_g, fat_g = EXCLUDED.fat_g, meals = EXCLUDED.meals,
    exercise_min = EXCLUDED.exercise_min, exercise_kcal = EXCLUDED.exercise_kcal, steps = EXCLUDED.steps,
    glucose_readings = EXCLUDED.glucose_readings, bp_readings = EXCLUDED.bp_readings,
    updated_at = EXCLUDED.updated_at
"""


def upsert_daily_totals(connection: Connection, days: Sequence[DayKey], now: datetime) -> int:
    """Recompute and store the totals of each (user, day) from its raw rows; returns how many days."""
    # One row per (user, day): ON CONFLICT cannot touch the same row twice in one statement.
    unique = list({(d.user_id, d.day): d for d in days}.values())
    if not unique:
        return 0
    connection.execute(text(_DAILY_TOTALS), {
        "user_ids": [d.user_id for d in unique],
        "days": [d.day for d in unique],
        "zones": [d.time_zone for d in unique],
        "starts": [d.start for d in unique],
        "ends": [d.end for d in unique],
        "now": now,
    })
    return len(unique)
