"""Raw events → rows of their hypertable; batch inserts where a rewrite of the same event is a no-op."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, TextClause, text
from sqlalchemy.dialects import postgresql

from schemas.events import (
    BloodPressureReading,
    Event,
    ExerciseSession,
    GlucoseReading,
    HbA1cResult,
    MealLogged,
)
from storage.tables import blood_pressure_readings, exercise_sessions, glucose_readings, hba1c_results, meals

Row = dict[str, Any]
_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def _envelope(event: Event) -> Row:
    return {
        "user_id": event.user_id,
        "occurred_at": event.occurred_at,
        "event_id": event.event_id,
        "device_id": event.device_id,
        "source": event.source.value,
        "received_at": event.received_at,
    }


def to_row(event: Event) -> tuple[Table, Row]:
    """The table an event belongs to, and its row there (glucose in mg/dL, HbA1c in %)."""
    row = _envelope(event)
    match event:
        case GlucoseReading():
            return glucose_readings, row | {
                "glucose_mg_dl": event.glucose_mg_dl, "kind": event.kind.value,
                "meal_context": event.meal_context.value, "trend": event.trend.value if event.trend else None,
            }
        case BloodPressureReading():
            return blood_pressure_readings, row | {
                "systolic_mmhg": event.systolic_mmhg, "diastolic_mmhg": event.diastolic_mmhg,
                "pulse_bpm": event.pulse_bpm, "arm": event.arm.value if event.arm else None,
                "position": event.position.value if event.position else None,
            }
        case HbA1cResult():
            return hba1c_results, row | {"hba1c_pct": event.hba1c_pct}
        case ExerciseSession():
            return exercise_sessions, row | {
                "activity": event.activity.value, "duration_min": event.duration_min,
                "energy_kcal": event.energy_kcal, "steps": event.steps,
                "mean_heart_rate_bpm": event.mean_heart_rate_bpm,
            }
        case MealLogged():
            photo = event.photo
            return meals, row | {
                "meal_slot": event.meal_slot.value, "energy_kcal": event.energy_kcal, "carbs_g": event.carbs_g,
                "protein_g": event.protein_g, "fat_g": event.fat_g,
                "photo_object_key": photo.object_key if photo else None,
                "photo_sha256": photo.sha256 if photo else None,
                "photo_content_type": photo.content_type.value if photo else None,
                "photo_size_bytes": photo.size_bytes if photo else None,
            }
    raise TypeError(f"no raw table for {type(event).__name__}")


def _array_type(table: Table, column: str) -> str:
    return f"{table.c[column].type.compile(dialect=_DIALECT)}[]"


@cache
def _insert_statement(table: Table) -> TextClause:
    """INSERT ... SELECT FROM unnest(one array per column) ON CONFLICT (key) DO NOTHING RETURNING event_id.

    One statement and one parameter per column however many rows: a multi-row VALUES list is a different
    statement for every batch size, which psycopg and the server parse again each time (4–5× slower: bench/README.md).
    """
    columns = [column.name for column in table.columns]
    quoted = ", ".join(f'"{name}"' for name in columns)
    arrays = ", ".join(f"CAST(:{name} AS {_array_type(table, name)})" for name in columns)
    key = ", ".join(f'"{column.name}"' for column in table.primary_key.columns)
    return text(f"INSERT INTO {table.name} ({quoted}) SELECT * FROM unnest({arrays}) "
                f"ON CONFLICT ({key}) DO NOTHING RETURNING event_id")


def insert_raw(connection: Connection, events: Iterable[Event]) -> int:
    """Insert events into their tables in one statement per table; returns how many were new.

    An event already stored (same user, time and event id) is left as it is, also when it appears twice in
    `events`, so writing the same events again is a no-op.
    """
    by_table: dict[Table, list[Row]] = defaultdict(list)
    for event in events:
        table, row = to_row(event)
        by_table[table].append(row)
    inserted = 0
    for table, rows in by_table.items():
        arrays = {column.name: [row.get(column.name) for row in rows] for column in table.columns}
        inserted += len(connection.execute(_insert_statement(table), arrays).all())
    return inserted
