"""storage.raw.insert_raw against the real TimescaleDB: the count of new rows, idempotence, and the columns
as stored (one unnest() statement per table)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Engine, text

from schemas.events import Event
from storage.raw import insert_raw, to_row
from tests.streams.factories import T0, bp, cgm, exercise, hba1c, meal


def stored(engine: Engine, table: str, user: str) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(text(f"SELECT * FROM {table} WHERE user_id = :u ORDER BY occurred_at"), {"u": user})
        return [dict(row._mapping) for row in rows]


def test_insert_raw_counts_new_rows_and_a_rewrite_is_a_no_op(engine: Engine) -> None:
    user = "raw-a"
    # Whole and fractional mg/dL in one array; the same event twice in one call.
    readings = [cgm(user, T0 + timedelta(minutes=5 * i), 100 if i % 2 else 100.5) for i in range(6)]
    events: list[Event] = [*readings, readings[0], bp(user, T0, 131, 84), meal(user, T0, kcal=None),
                           exercise(user, T0, 30, steps=3000), hba1c(user, T0, 6.8)]
    with engine.begin() as connection:
        assert insert_raw(connection, events) == len(events) - 1
    with engine.begin() as connection:
        assert insert_raw(connection, events) == 0
    with engine.begin() as connection:
        assert insert_raw(connection, [cgm(user, T0 + timedelta(hours=1), 90.0), *events]) == 1
    with engine.begin() as connection:
        assert insert_raw(connection, []) == 0

    for event in events[7:]:  # one row each in bp, meals, exercise, hba1c
        table, row = to_row(event)
        assert stored(engine, table.name, user) == [row], table.name
    glucose = stored(engine, "glucose_readings", user)
    assert [r["glucose_mg_dl"] for r in glucose] == [100.5, 100, 100.5, 100, 100.5, 100, 90.0]
    assert glucose[0] == to_row(readings[0])[1]
