"""`vitalstream worker streams` as a subprocess against the real Kafka and TimescaleDB: the numbers it stores,
poison messages, daily totals in users' own time zones, alerts and tier changes, and its /metrics."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Message
from typer.testing import CliRunner

from producers.importer import CsvLayout, import_glucose
from schemas.codec import encode
from schemas.events import Event
from schemas.topics import MEALS, READINGS
from tests.streams.deployment import Deployment, WorkerProcess, deployment_fixture
from tests.streams.factories import bp, cgm, exercise, meal
from vitalstream.cli import metrics as metrics_cli

pytestmark = pytest.mark.slow

PROFILE_USERS = {"ny-user": "America/New_York", "seoul-user": "Asia/Seoul"}
#: CLI key -> glucose_metrics column
COLUMNS = {"n": "readings", "mean": "mean_mg_dl", "sd": "sd_mg_dl", "cv": "cv_pct", "gmi": "gmi_pct",
           "tir": "tir_pct", "tbr70": "tbr70_pct", "tbr54": "tbr54_pct", "tar180": "tar180_pct",
           "tar250": "tar250_pct", "lbgi": "lbgi", "hbgi": "hbgi", "gri": "gri", "gri_zone": "gri_zone"}


@pytest.fixture(scope="module")
def deployment(kafka_bootstrap: str, fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Deployment]:
    yield from deployment_fixture(kafka_bootstrap, fresh_database_url, tmp_path_factory.mktemp("streams-worker"))


@pytest.fixture(scope="module")
def worker(deployment: Deployment) -> WorkerProcess:
    worker = deployment.start_worker()
    # Profiles first, and wait until the worker has them: topics are consumed in no set order.
    with deployment.producer() as producer:
        for user_id, zone in PROFILE_USERS.items():
            profile = {"user_id": user_id, "time_zone": zone, "bp_guideline": None,
                       "updated_at": datetime.now(UTC).isoformat()}
            producer.produce(deployment.topics.profiles.name, json.dumps(profile).encode(), key=user_id.encode())
    deployment.wait_for(lambda: worker.metric("vitalstream_streams_events_total", outcome="stored",
                                              type="user_profile") >= len(PROFILE_USERS),
                        timeout_s=90, what="the worker to take the profiles")
    return worker


def send(deployment: Deployment, events: list[Event]) -> None:
    with deployment.producer() as producer:
        for event in events:
            producer.send(deployment.topic(MEALS if getattr(event, "type", "") == "meal" else READINGS), event)


def header(message: Message, name: str) -> bytes:
    value = dict(message.headers() or []).get(name)
    assert isinstance(value, bytes), (name, message.headers())
    return value


def totals(deployment: Deployment, user_id: str) -> dict[date, dict[str, Any]]:
    rows = deployment.rows("SELECT day, time_zone, energy_kcal, meals, glucose_readings, exercise_min, steps "
                           "FROM daily_totals WHERE user_id = :u ORDER BY day", u=user_id)
    return {r[0]: {"zone": r[1], "kcal": r[2], "meals": r[3], "glucose": r[4], "exercise_min": r[5], "steps": r[6]}
            for r in rows}


def test_streamed_14_day_metrics_equal_the_metrics_command(deployment: Deployment, worker: WorkerProcess,
                                                           iglu_csv: Path) -> None:
    with deployment.producer() as producer:
        summary = import_glucose(iglu_csv, CsvLayout(), producer, topic=deployment.topic(READINGS))
    assert summary.rejected == 0
    result = CliRunner().invoke(metrics_cli.app, ["glucose", str(iglu_csv), "--window-days", "14"])
    assert result.exit_code == 0, result.output
    expected: dict[str, dict[str, Any]] = json.loads(result.output)
    assert len(expected) == 5

    def latest() -> dict[str, dict[str, Any]] | None:
        rows = deployment.rows(
            "SELECT DISTINCT ON (user_id) user_id, " + ", ".join(f'"{c}"' for c in COLUMNS.values()) +
            " FROM glucose_metrics WHERE \"window\" = '14d' AND user_id LIKE 'Subject %' "
            "ORDER BY user_id, as_of DESC")
        found = {r[0]: dict(zip(COLUMNS, r[1:], strict=True)) for r in rows}
        done = len(found) == 5 and all(found[s]["n"] == expected[s]["n"] for s in expected)
        return found if done else None

    stored = deployment.wait_for(latest, timeout_s=120, what="14-day metrics of all 5 subjects")
    assert deployment.scalar("SELECT count(*) FROM glucose_readings WHERE user_id LIKE 'Subject %'") == 13_866
    for subject, numbers in expected.items():
        for key, value in numbers.items():
            if isinstance(value, float):
                assert stored[subject][key] == pytest.approx(value, rel=1e-12, abs=1e-12), (subject, key)
            else:
                assert stored[subject][key] == value, (subject, key)
    # Subject 2 spans 16.7 days: the window really is the last 14 (2,829 readings in all).
    assert expected["Subject 2"]["n"] < 2_829


def test_poison_messages_go_to_the_dead_letter_topic_and_the_worker_keeps_going(
        deployment: Deployment, worker: WorkerProcess) -> None:
    at = datetime.now(UTC) - timedelta(minutes=3)
    good = json.loads(encode(cgm("poison-user", at, 110.0)))
    poison = {
        "undecodable": (b"poison-user", b"\xff\xfe not json"),
        "schema_invalid": (b"poison-user", b'{"type": "glucose", "user_id": "poison-user"}'),
        "out_of_range": (b"poison-user", json.dumps({**good, "value": 5000.0}).encode()),
        "key_mismatch": (b"someone-else", json.dumps(good).encode()),
    }
    readings = deployment.topics.readings.name
    with deployment.producer() as producer:
        for key, value in poison.values():
            producer.produce(readings, value, key=key)
    send(deployment, [cgm("poison-user", at + timedelta(minutes=1), 120.0)])
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM glucose_readings WHERE user_id = "
                                                  "'poison-user'") == 1, timeout_s=60, what="the good reading")
    letters = deployment.consume(deployment.topics.dead_letter, expect=4)
    by_reason = {header(m, "reason").decode(): m for m in letters}
    assert set(by_reason) == set(poison)
    for reason, (key, value) in poison.items():
        letter = by_reason[reason]
        assert (letter.key(), letter.value()) == (key, value)
        assert header(letter, "source_topic") == readings.encode() and int(header(letter, "source_offset")) >= 0
        assert header(letter, "error"), reason
        assert worker.metric("vitalstream_streams_dead_letters_total", reason=reason) == 1.0
    assert worker.running


def test_daily_totals_follow_new_york_across_the_november_dst_change(deployment: Deployment,
                                                                     worker: WorkerProcess) -> None:
    user = "ny-user"
    edt, est = timedelta(hours=-4), timedelta(hours=-5)

    def local(day: int, hour: int, minute: int, offset: timedelta) -> datetime:
        return (datetime(2024, 11, day, hour, minute) - offset).replace(tzinfo=UTC)

    meals = [meal(user, local(2, 23, 30, edt), kcal=100.0), meal(user, local(3, 0, 30, edt), kcal=200.0),
             meal(user, local(3, 1, 30, edt), kcal=400.0),  # 01:30 EDT, then the clock goes back ...
             meal(user, local(3, 1, 30, est), kcal=800.0),  # ... and 01:30 happens again, EST
             meal(user, local(3, 23, 30, est), kcal=1600.0),  # already 2024-11-04 in UTC
             meal(user, local(4, 0, 30, est), kcal=3200.0)]
    start = datetime(2024, 11, 2, 12, tzinfo=UTC)
    readings = [cgm(user, start + timedelta(minutes=30 * i), 120.0) for i in range(97)]  # to 2024-11-04 12:00Z
    send(deployment, [*meals, *readings])
    expected = {
        date(2024, 11, 2): {"kcal": 100.0, "meals": 1, "glucose": 32},
        date(2024, 11, 3): {"kcal": 3000.0, "meals": 4, "glucose": 50},  # a 25-hour day: 50 half-hours
        date(2024, 11, 4): {"kcal": 3200.0, "meals": 1, "glucose": 15},
    }

    def matches() -> dict[date, dict[str, Any]] | None:
        found = totals(deployment, user)
        got = {d: {k: v[k] for k in ("kcal", "meals", "glucose")} for d, v in found.items()}
        return found if got == expected else None

    found = deployment.wait_for(matches, timeout_s=60, what="New York daily totals")
    assert {v["zone"] for v in found.values()} == {"America/New_York"}


def test_daily_totals_follow_seoul_across_midnight_utc(deployment: Deployment, worker: WorkerProcess) -> None:
    user = "seoul-user"
    events: list[Event] = [
        meal(user, datetime(2024, 6, 1, 14, 59, tzinfo=UTC), kcal=10.0),  # 23:59 KST, June 1
        meal(user, datetime(2024, 6, 1, 15, 0, tzinfo=UTC), kcal=20.0),  # 00:00 KST, June 2
        meal(user, datetime(2024, 6, 1, 23, 30, tzinfo=UTC), kcal=40.0),  # 08:30 KST, June 2
        exercise(user, datetime(2024, 6, 2, 14, 0, tzinfo=UTC), 30.0, steps=4000),  # 23:00 KST, June 2
        meal(user, datetime(2024, 6, 2, 15, 30, tzinfo=UTC), kcal=80.0),  # 00:30 KST, June 3
    ]
    send(deployment, events)
    expected = {date(2024, 6, 1): (10.0, 1, 0.0, 0), date(2024, 6, 2): (60.0, 2, 30.0, 4000),
                date(2024, 6, 3): (80.0, 1, 0.0, 0)}

    def matches() -> bool:
        found = totals(deployment, user)
        return {d: (v["kcal"], v["meals"], v["exercise_min"], v["steps"]) for d, v in found.items()} == expected

    deployment.wait_for(matches, timeout_s=60, what="Seoul daily totals")


def test_a_crisis_reading_publishes_one_alert_and_one_tier_change_even_when_sent_twice(
        deployment: Deployment, worker: WorkerProcess) -> None:
    user = "alert-user"
    reading = bp(user, datetime.now(UTC) - timedelta(minutes=1), 196, 104)
    send(deployment, [reading])
    deployment.wait_for(lambda: deployment.scalar("SELECT tier FROM risk_tiers WHERE user_id = :u", u=user),
                        timeout_s=60, what="the risk tier row")
    send(deployment, [reading])  # a redelivery: the same event again
    deployment.wait_for(lambda: worker.metric("vitalstream_streams_events_total", outcome="duplicate",
                                              type="blood_pressure") >= 1, timeout_s=60, what="the duplicate")
    alerts = [json.loads(m.value() or b"") for m in deployment.consume(deployment.topics.alerts, expect=1)
              if m.key() == user.encode()]
    assert [(a["kind"], a["severity"], a["trigger_event_id"]) for a in alerts] == \
        [("hypertensive_crisis", "critical", str(reading.event_id))]
    assert alerts[0]["values"] == {"systolic_mmhg": 196.0, "diastolic_mmhg": 104.0}
    changes = [json.loads(m.value() or b"") for m in deployment.consume(deployment.topics.risk_tiers, expect=1)
               if m.key() == user.encode()]
    assert [(c["tier"], c["previous_tier"]) for c in changes] == [("urgent", None)]
    assert {r["code"] for r in changes[0]["reasons"]} >= {"BP_CRISIS_READING", "BP_MEAN_CRISIS"}


def test_metrics_endpoint_reports_batches_writes_and_latency_without_user_labels(
        deployment: Deployment, worker: WorkerProcess) -> None:
    send(deployment, [cgm("metrics-user", datetime.now(UTC) - timedelta(minutes=1), 100.0)])
    deployment.wait_for(lambda: worker.metric("vitalstream_streams_events_total", outcome="stored", type="glucose")
                        and deployment.scalar("SELECT count(*) FROM glucose_metrics WHERE user_id = 'metrics-user'"),
                        timeout_s=60, what="the metrics user's reading")
    samples = worker.metrics()
    for name in ('vitalstream_streams_batch_size_count{agent="events"}',
                 "vitalstream_streams_db_write_seconds_count{}", "vitalstream_streams_reading_to_tier_seconds_count{}"):
        assert samples[name] > 0, name
    users = {*PROFILE_USERS, "metrics-user", "alert-user", "poison-user", "Subject 1"}
    assert not [key for key in samples if any(user in key for user in users)]


def test_a_second_worker_shares_the_partitions(deployment: Deployment, worker: WorkerProcess) -> None:
    # Last in the module: it changes the deployment (two workers from here on). Readings arrive while the
    # workers restore their tables after the rebalance, some on partitions without a committed offset, where
    # plain Faust would skip them (streams/transport.py, fix 2).
    before = worker.metric("vitalstream_streams_events_total", outcome="stored", type="glucose")
    second = deployment.start_worker("second")

    def shared() -> bool:
        first_share = worker.metric("vitalstream_streams_assigned_partitions")
        second_share = second.metric("vitalstream_streams_assigned_partitions")
        # 12 partitions each of readings, meals, meal analyses and profiles.
        return first_share > 0 and second_share > 0 and first_share + second_share == 48

    deployment.wait_for(shared, timeout_s=90, what="both workers to own partitions", interval_s=0.1)
    # The start of the last hour: the 4 readings (15 min) then fall on one UTC day whenever the test runs.
    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    users = [f"shared-{i}" for i in range(48)]  # spread over all 12 partitions
    for k in range(4):
        send(deployment, [cgm(user, at + timedelta(minutes=5 * k), 100.0 + k) for user in users])
        time.sleep(0.5)
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM daily_totals WHERE user_id LIKE 'shared-%' "
                                                  "AND glucose_readings = 4") == len(users),
                        timeout_s=90, what="every shared user's 4 readings",
                        describe=lambda: str(deployment.scalar("SELECT count(*) FROM glucose_readings "
                                                               "WHERE user_id LIKE 'shared-%'")))
    assert deployment.scalar("SELECT count(*) FROM glucose_readings WHERE user_id LIKE 'shared-%'") == 4 * len(users)
    assert worker.metric("vitalstream_streams_events_total", outcome="stored", type="glucose") > before
    assert second.metric("vitalstream_streams_events_total", outcome="stored", type="glucose") > 0
    deployment.wait_for(lambda: deployment.lag()[deployment.topics.readings.name] == 0, timeout_s=30,
                        what="every reading's offset committed")
