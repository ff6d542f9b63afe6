"""Effectively once, end to end: 100,000 events of 200 users stream into a worker that is SIGKILLed mid-stream
and restarted; every raw row is then stored once and every daily total equals the truth computed from the
input, in each user's own time zone; the restarted worker's state (restored from its changelogs) holds every
user's full glucose window."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from schemas.topics import MEALS, READINGS
from tests.streams.deployment import Deployment, deployment_fixture
from tests.streams.synthetic import daily_truth, synthetic, user_zone

pytestmark = pytest.mark.slow

USERS = 200
EVENTS_PER_USER = 500
KILL_AT_ROWS = 35_000
# A static member (instance id), so the restarted worker takes its partitions back at once instead of the group
# waiting out the killed member's session timeout; and batches of up to 0.5 s of backlog (fewer, larger ones).
WORKER_ENV = {"VITALSTREAM_STREAMS_INSTANCE_ID": "eo-worker", "VITALSTREAM_STREAMS_BATCH_WAIT_MS": "500"}


@pytest.fixture(scope="module")
def deployment(kafka_bootstrap: str, fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Deployment]:
    yield from deployment_fixture(kafka_bootstrap, fresh_database_url, tmp_path_factory.mktemp("streams-eo"))


def raw_rows(deployment: Deployment) -> int:
    return int(deployment.scalar(
        "SELECT (SELECT count(*) FROM glucose_readings) + (SELECT count(*) FROM blood_pressure_readings) + "
        "(SELECT count(*) FROM meals) + (SELECT count(*) FROM exercise_sessions)"))


def test_a_killed_worker_leaves_every_row_once_and_every_total_right(deployment: Deployment) -> None:
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=2)
    events = synthetic(USERS, EVENTS_PER_USER, start)
    assert len(events) == USERS * EVENTS_PER_USER
    zones = {f"syn-{i:04d}": user_zone(i) for i in range(USERS) if user_zone(i) != "UTC"}
    truth = daily_truth(events, zones)

    first = deployment.start_worker("first", **WORKER_ENV)
    with deployment.producer() as producer:
        for user_id, zone in zones.items():
            profile = {"user_id": user_id, "time_zone": zone, "updated_at": start.isoformat()}
            producer.produce(deployment.topics.profiles.name, json.dumps(profile).encode(), key=user_id.encode())
    deployment.wait_for(lambda: first.metric("vitalstream_streams_events_total", outcome="stored",
                                             type="user_profile") == len(zones),
                        timeout_s=90, what="profiles taken")
    with deployment.producer() as producer:
        for event in events:
            producer.send(deployment.topic(MEALS if getattr(event, "type", "") == "meal" else READINGS), event)

    at_kill = deployment.wait_for(lambda: (n := raw_rows(deployment)) >= KILL_AT_ROWS and n, timeout_s=120,
                                  what=f"{KILL_AT_ROWS} rows before the kill", interval_s=0.2)
    first.kill()
    assert at_kill < len(events), "the worker finished before it could be killed mid-stream"

    second = deployment.start_worker("second", **WORKER_ENV)
    deployment.wait_for(lambda: raw_rows(deployment) == len(events), timeout_s=180, what="all rows",
                        describe=lambda: f"{raw_rows(deployment)} of {len(events)} rows")

    def totals_match() -> bool:
        rows = deployment.rows("SELECT user_id, day, meals, energy_kcal, carbs_g, exercise_min, steps, "
                               "glucose_readings, bp_readings FROM daily_totals WHERE user_id LIKE 'syn-%'")
        stored = {(r[0], r[1]): tuple(r[2:]) for r in rows}
        expected = {key: (t.meals, t.energy_kcal, t.carbs_g, t.exercise_min, t.steps, t.glucose_readings,
                          t.bp_readings) for key, t in truth.items()}
        return stored.keys() == expected.keys() and all(
            _close(stored[key], expected[key]) for key in expected)

    deployment.wait_for(totals_match, timeout_s=120, what="daily totals equal to the truth")
    for table in ("glucose_readings", "blood_pressure_readings", "meals", "exercise_sessions"):
        assert deployment.scalar(f"SELECT count(*) - count(DISTINCT event_id) FROM {table}") == 0, table
    stored_ids = {str(r[0]) for table in ("glucose_readings", "blood_pressure_readings", "meals",
                                          "exercise_sessions")
                  for r in deployment.rows(f"SELECT event_id FROM {table}")}
    assert stored_ids == {str(e.event_id) for e in events}
    # Every offset is committed in the end: nothing was skipped (streams/transport.py), nothing is pending.
    deployment.wait_for(lambda: sum(deployment.lag().values()) == 0, timeout_s=30, what="every offset committed",
                        describe=lambda: str(deployment.lag()))
    # The restarted worker replayed what the first had stored but not committed, harmlessly.
    assert second.metric("vitalstream_streams_events_total", outcome="duplicate", type="glucose") > 0
    # Its restored state holds each user's whole window (474 CGM readings each, all within 14 days).
    deployment.wait_for(lambda: deployment.scalar(
        "SELECT count(*) FROM (SELECT DISTINCT ON (user_id) readings FROM glucose_metrics WHERE \"window\" = '14d' "
        "AND user_id LIKE 'syn-%' ORDER BY user_id, as_of DESC) latest WHERE readings = 474") == USERS,
        timeout_s=60, what="every user's newest 14-day metrics to cover all 474 readings")


def _close(stored: tuple[float, ...], expected: tuple[float, ...]) -> bool:
    return all(abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(b)))
               for a, b in zip(stored, expected, strict=True))
