"""Raw events → rows of their hypertable; batch inserts where a rewrite of the same event is a no-op."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert

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


def insert_raw(connection: Connection, events: Iterable[Event]) -> int:
    """Insert events into their tables in one round trip per table; returns how many were new."""
    by_table: dict[Table, list[Row]] = defaultdict(list)
    for event in events:
        table, row = to_row(event)
        by_table[table].append(row)
    inserted = 0
    for table, rows in by_table.items():
        statement = insert(table).on_conflict_do_nothing(index_elements=["user_id", "occurred_at", "event_id"])
        result = connection.execute(statement.returning(table.c.event_id), rows)
        inserted += len(result.all())
    return inserted
