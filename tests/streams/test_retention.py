"""Retention against the real TimescaleDB: old chunks go, recent data stays, a second run removes nothing, and the
stream worker's schedule runs it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from storage.meal_analyses import insert_meal_analyses
from storage.raw import insert_raw
from storage.retention import RetentionPolicy, apply_retention
from streams.retention import start_retention
from tests.streams.factories import analysis, bp, cgm, photo_meal
from vitalstream.config import Settings

POLICY = RetentionPolicy(raw_days=365, snapshot_days=30)


def _snapshot(engine: Engine, user: str, at: datetime) -> None:
    with engine.begin() as connection:
        connection.execute(text(
            "INSERT INTO glucose_metrics (user_id, \"window\", as_of_hour, as_of, window_start, readings, sufficient) "
            "VALUES (:u, '24h', :at, :at, :start, 1, false)"), {"u": user, "at": at, "start": at - timedelta(days=1)})


def _count(engine: Engine, table: str, user: str) -> int:
    with engine.connect() as connection:
        count: int = connection.execute(text(f"SELECT count(*) FROM {table} WHERE user_id = :u"),
                                        {"u": user}).scalar_one()
    return count


def _old_and_recent(engine: Engine, user: str, now: datetime) -> None:
    old, recent = now - timedelta(days=400), now - timedelta(days=3)
    old_meal, recent_meal = photo_meal(user, old), photo_meal(user, recent)
    with engine.begin() as connection:
        insert_raw(connection, [cgm(user, old, 120.0), cgm(user, recent, 130.0), bp(user, old, 121, 79), old_meal,
                                recent_meal])
        insert_meal_analyses(connection, [analysis(old_meal), analysis(recent_meal)])
    _snapshot(engine, user, (now - timedelta(days=100)).replace(minute=0, second=0, microsecond=0))
    _snapshot(engine, user, (now - timedelta(days=1)).replace(minute=0, second=0, microsecond=0))


def test_old_chunks_go_recent_data_stays_and_a_second_run_removes_nothing(engine: Engine) -> None:
    now = datetime.now(UTC)
    user = "retention-1"
    _old_and_recent(engine, user, now)
    with engine.begin() as connection:
        removed = apply_retention(connection, POLICY, now)
    assert removed["glucose_readings"] >= 1 and removed["blood_pressure_readings"] >= 1 and removed["meals"] >= 1
    assert removed["glucose_metrics"] >= 1 and removed["meal_analyses"] == 1
    assert [_count(engine, t, user) for t in ("glucose_readings", "blood_pressure_readings", "meals",
                                              "meal_analyses", "glucose_metrics")] == [1, 0, 1, 1, 1]
    with engine.begin() as connection:
        again = apply_retention(connection, POLICY, now)
    assert sum(again.values()) == 0, again


def test_a_policy_of_less_than_a_day_is_refused() -> None:
    with pytest.raises(ValueError, match="raw_days must be at least 1"):
        RetentionPolicy(raw_days=0, snapshot_days=30)


def test_the_worker_schedule_applies_the_policy_at_once(engine: Engine, fresh_database_url: str) -> None:
    user = "retention-2"
    _old_and_recent(engine, user, datetime.now(UTC))
    settings = Settings(database_url=fresh_database_url, retention_raw_days=365, retention_snapshot_days=30,
                        retention_interval_s=3600)
    stop = start_retention(settings)
    assert stop is not None
    try:
        deadline = time.monotonic() + 30
        while _count(engine, "glucose_readings", user) != 1 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
    assert _count(engine, "glucose_readings", user) == 1
    assert _count(engine, "blood_pressure_readings", user) == 0


def test_an_interval_of_zero_switches_the_schedule_off() -> None:
    assert start_retention(Settings(retention_interval_s=0)) is None
