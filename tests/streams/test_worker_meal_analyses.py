"""`vitalstream worker streams` against the real Kafka and TimescaleDB, for what issues 3 and 5 added: it consumes
the meal-analyses topic (an analysis before its meal, a redelivery, poison), folds estimates into daily totals,
fills the users' feed, and stores profiles (a tombstone deletes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.events import Event, MealLogged
from schemas.meal_analysis import MealAnalyzed
from schemas.topics import MEAL_ANALYSES, MEALS, READINGS
from tests.streams.deployment import Deployment, WorkerProcess, deployment_fixture
from tests.streams.factories import analysis, bp, photo_meal

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def deployment(kafka_bootstrap: str, fresh_database_url: str, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[Deployment]:
    yield from deployment_fixture(kafka_bootstrap, fresh_database_url, tmp_path_factory.mktemp("streams-analyses"))


@pytest.fixture(scope="module")
def worker(deployment: Deployment) -> WorkerProcess:
    return deployment.start_worker()


def send(deployment: Deployment, events: list[Event]) -> None:
    with deployment.producer() as producer:
        for event in events:
            topic = MEAL_ANALYSES if isinstance(event, MealAnalyzed) else MEALS if isinstance(event, MealLogged) \
                else READINGS
            producer.send(deployment.topic(topic), event)


def test_an_analysis_sent_before_its_meal_fills_in_the_meal_s_totals_once(deployment: Deployment,
                                                                          worker: WorkerProcess) -> None:
    user = "wa-early"
    dinner = photo_meal(user, datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
    analysed = analysis(dinner, kcal=720.0, carbs=85.0, protein=31.0, fat=22.0)
    send(deployment, [analysed])
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM meal_analyses WHERE user_id = :u", u=user),
                        timeout_s=90, what="the analysis row")
    send(deployment, [dinner])
    deployment.wait_for(
        lambda: deployment.rows("SELECT meals, energy_kcal, carbs_g, protein_g, fat_g FROM daily_totals "
                                "WHERE user_id = :u", u=user) == [(1, 720.0, 85.0, 31.0, 22.0)],
        timeout_s=60, what="the estimate in the daily totals",
        describe=lambda: str(deployment.rows("SELECT * FROM daily_totals WHERE user_id = :u", u=user)))

    send(deployment, [analysed])  # a redelivery
    deployment.wait_for(lambda: worker.metric("vitalstream_streams_events_total", type="meal_analysis",
                                              outcome="duplicate") >= 1, timeout_s=60, what="the duplicate")
    assert deployment.scalar("SELECT count(*) FROM meal_analyses WHERE user_id = :u", u=user) == 1
    assert deployment.rows("SELECT kind, source_event_id FROM user_feed WHERE user_id = :u", u=user) == \
        [("meal_analysis", analysed.event_id)]
    assert deployment.scalar("SELECT energy_kcal FROM daily_totals WHERE user_id = :u", u=user) == 720.0


def test_a_poison_analysis_is_dead_lettered(deployment: Deployment, worker: WorkerProcess) -> None:
    user = "wa-poison"
    good = json.loads(analysis(photo_meal(user, datetime.now(UTC) - timedelta(hours=2))).model_dump_json())
    topic = deployment.topics.meal_analyses.name
    with deployment.producer() as producer:
        producer.produce(topic, json.dumps({**good, "carbs_g": 99_999}).encode(), key=user.encode())
    letters = deployment.wait_for(
        lambda: [m for m in deployment.consume(deployment.topics.dead_letter, expect=1, timeout_s=5)
                 if dict(m.headers() or [])["source_topic"] == topic.encode()],
        timeout_s=60, what="the dead letter")
    assert dict(letters[0].headers() or [])["reason"] == b"out_of_range"
    assert deployment.scalar("SELECT count(*) FROM meal_analyses WHERE user_id = :u", u=user) == 0
    assert worker.running


def test_alerts_and_tier_changes_land_in_the_feed(deployment: Deployment, worker: WorkerProcess) -> None:
    user = "wa-crisis"
    send(deployment, [bp(user, datetime.now(UTC) - timedelta(minutes=1), 201, 111)])

    def both() -> list[Any] | None:
        rows = deployment.rows("SELECT kind, payload FROM user_feed WHERE user_id = :u ORDER BY kind", u=user)
        return rows if len(rows) == 2 else None

    rows = deployment.wait_for(both, timeout_s=60, what="the alert and the tier change in the feed")
    assert [(kind, payload.get("kind") or payload.get("tier")) for kind, payload in rows] == \
        [("alert", "hypertensive_crisis"), ("risk_tier_changed", "urgent")]


def test_profiles_are_stored_and_a_tombstone_deletes_one(deployment: Deployment, worker: WorkerProcess) -> None:
    topic = deployment.topics.profiles.name
    with deployment.producer() as producer:
        for user, zone in (("wa-lisbon", "Europe/Lisbon"), ("wa-gone", "Asia/Tokyo")):
            body = {"user_id": user, "time_zone": zone, "updated_at": datetime.now(UTC).isoformat()}
            producer.produce(topic, json.dumps(body).encode(), key=user.encode())
    deployment.wait_for(lambda: deployment.scalar("SELECT count(*) FROM user_profiles") == 2, timeout_s=90,
                        what="both profiles")
    with deployment.producer() as producer:
        producer.produce(topic, None, key=b"wa-gone")  # type: ignore[arg-type]
    deployment.wait_for(lambda: deployment.rows("SELECT user_id, time_zone FROM user_profiles") ==
                        [("wa-lisbon", "Europe/Lisbon")], timeout_s=60, what="the tombstone applied")
