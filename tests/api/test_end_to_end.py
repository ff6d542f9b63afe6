"""The whole path with no stand-ins: readings POSTed to the API → Kafka → the real stream worker
(`vitalstream worker streams`, a subprocess) → TimescaleDB → the API's results routes.

The worker and the API share a database of their own; the worker reads the shared topics from the start (its
consumer group is new), so it also stores earlier tests' readings there, which nothing here looks at.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from confluent_kafka.admin import AdminClient
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from api.app import create_app
from schemas.topics import MEAL_ANALYSES, MEALS
from storage.feed import FeedKind, feed_after
from storage.migrate import scratch_database
from tests.api.conftest import sign_up
from tests.api.images import coffee_photo
from tests.inference.deployment import Deployment
from vitalstream.config import Settings

deployment = pytest.importorskip("tests.streams.deployment", reason="the stream worker's test harness is not here")

pytestmark = pytest.mark.slow
T = TypeVar("T")
#: The worker may first work through the history of the shared topics.
WAIT_S = 180.0


@pytest.fixture(scope="module")
def private_database(database_url: str) -> Iterator[str]:
    with scratch_database(database_url, "api_e2e") as url:
        yield url


@dataclass
class Pipeline:
    client: TestClient
    worker: Any  # tests.streams.deployment.WorkerProcess

    def wait_for(self, probe: Callable[[], T | None], what: str) -> T:
        deadline = time.monotonic() + WAIT_S
        while True:
            value = probe()
            if value is not None:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; worker log:\n{self.worker.log_tail()}")
            time.sleep(1.0)


@pytest.fixture(scope="module")
def pipeline(private_database: str, kafka_with_topics: str, api_settings: Settings,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    app_id = f"api-e2e-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VITALSTREAM_STREAMS_")}
    env |= {"KAFKA_BOOTSTRAP_SERVERS": kafka_with_topics, "DATABASE_URL": private_database,
            "VITALSTREAM_STREAMS_APP_ID": app_id, "VITALSTREAM_STREAMS_BATCH_WAIT_MS": "100"}
    log_path = Path(tmp_path_factory.mktemp("worker")) / "worker.log"
    worker = deployment.WorkerProcess(env, log_path).start()
    try:
        with TestClient(create_app(api_settings.model_copy(update={"database_url": private_database}))) as client:
            yield Pipeline(client, worker)
    finally:
        worker.stop()
        admin = AdminClient({"bootstrap.servers": kafka_with_topics})
        changelogs = [n for n in admin.list_topics(timeout=10).topics if n.startswith(f"{app_id}-")]
        if changelogs:
            for future in admin.delete_topics(changelogs, operation_timeout=30).values():
                future.result(timeout=60)


def test_readings_posted_to_the_api_come_back_as_results(pipeline: Pipeline) -> None:
    client = pipeline.client
    account = sign_up(client)
    end = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=2)
    values = [round(140 + 70 * np.sin(i / 20), 1) for i in range(288)]  # a day of 5-minute readings, some high
    readings = [{"occurred_at": (end - timedelta(minutes=5 * (287 - i))).isoformat(), "unit": "mg/dL",
                 "value": value, "kind": "cgm"} for i, value in enumerate(values)]
    assert client.post("/v1/readings/glucose", json=readings, headers=account.auth).status_code == 202
    bp = [{"occurred_at": (end - timedelta(hours=h)).isoformat(), "systolic_mmhg": 150, "diastolic_mmhg": 95}
          for h in (1, 20, 40)]
    assert client.post("/v1/readings/bp", json=bp, headers=account.auth).status_code == 202

    def metrics() -> dict[str, Any] | None:
        response = client.get("/v1/me/metrics/glucose", params={"window": "24h"}, headers=account.auth)
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 and body["readings"] == len(values) else None

    day = pipeline.wait_for(metrics, "the worker's 24 h glucose metrics")
    assert day["mean_mg_dl"] == pytest.approx(np.mean(values))
    assert day["tir_pct"] == pytest.approx(100 * np.mean([70 <= v <= 180 for v in values]))
    assert datetime.fromisoformat(day["as_of"]) == end

    def summary() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get("/v1/me/summary", headers=account.auth).json()
        return body if body["risk_tier"] is not None and body["blood_pressure"] is not None else None

    body = pipeline.wait_for(summary, "the risk tier and the blood pressure")
    assert body["glucose"]["glucose_mg_dl"] == values[-1]
    assert body["blood_pressure"]["category"] == "stage_2_hypertension"  # 150/95 under ACC/AHA 2017
    assert body["risk_tier"]["tier"] in {"low", "moderate", "high", "urgent"}

    page = client.get("/v1/me/readings/glucose", params={"limit": 1000}, headers=account.auth).json()
    assert [item["glucose_mg_dl"] for item in page["items"]] == values[::-1]


def test_a_profile_set_through_the_api_is_applied_by_the_worker(pipeline: Pipeline) -> None:
    client = pipeline.client
    account = sign_up(client)
    assert client.get("/v1/me/profile", headers=account.auth).json()["applied"] is False
    sent = client.put("/v1/me/profile", json={"time_zone": "Asia/Seoul", "bp_guideline": "ksh_2018"},
                      headers=account.auth)
    assert sent.status_code == 202, sent.text

    def applied() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get("/v1/me/profile", headers=account.auth).json()
        return body if body["applied"] else None

    profile = pipeline.wait_for(applied, "the worker to apply the profile")
    assert (profile["time_zone"], profile["bp_guideline"]) == ("Asia/Seoul", "ksh_2018")
    bp = {"occurred_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(), "systolic_mmhg": 135,
          "diastolic_mmhg": 82}
    assert client.post("/v1/readings/bp", json=bp, headers=account.auth).status_code == 202

    def summary() -> dict[str, Any] | None:
        body: dict[str, Any] = client.get("/v1/me/summary", headers=account.auth).json()
        return body if body["blood_pressure"] is not None else None

    reading = pipeline.wait_for(summary, "the blood pressure")["blood_pressure"]
    # 135/82 is stage 1 under ACC/AHA 2017 (the deployment's default) but 고혈압 전단계 under KSH 2018.
    assert (reading["guideline"], reading["category"]) == ("ksh_2018", "prehypertension")


def test_a_meal_photo_uploaded_through_the_api_reaches_the_daily_totals_and_the_feed(
        pipeline: Pipeline, private_database: str, api_settings: Settings, triton_url: str, tmp_path: Path) -> None:
    inference = Deployment.create(api_settings.kafka, tmp_path / "inference", triton_url=triton_url,
                                  triton_protocol="grpc", object_store_dir=api_settings.object_store_dir)
    inference.start_at_end(MEALS.name)
    # The analyses go to the shared topic the worker reads; dead letters stay private.
    topics = replace(inference.topics, meals=MEALS, analyses=MEAL_ANALYSES)
    client = pipeline.client
    account = sign_up(client)
    eaten_at = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    today = {"from": eaten_at.date().isoformat(), "to": eaten_at.date().isoformat(), "time_zone": "UTC"}
    try:
        with inference.running(topics):
            response = client.post(
                "/v1/meals/photo", files={"image": ("coffee.png", coffee_photo(), "image/png")},
                data={"meal_slot": "breakfast", "occurred_at": eaten_at.isoformat()}, headers=account.auth)
            assert response.status_code == 202, response.text
            meal_id = response.json()["event_ids"][0]

            def estimated_day() -> dict[str, Any] | None:
                days = client.get("/v1/me/daily", params=today, headers=account.auth).json()["days"]
                return days[0] if days and days[0]["energy_kcal"] else None

            day = pipeline.wait_for(estimated_day, "the photo's estimate in the daily totals")
    finally:
        inference.close()
    engine = create_engine(private_database)
    try:
        with engine.connect() as connection:
            feed = [row for row in feed_after(connection, account.user_id, 0, 100)
                    if row.kind is FeedKind.MEAL_ANALYSIS]
    finally:
        engine.dispose()
    # The feed row is what GET /v1/me/events streams (tests/api/test_events.py shows that part).
    assert len(feed) == 1 and feed[0].payload["meal_event_id"] == meal_id
    analysis = feed[0].payload
    assert analysis["is_food"] and analysis["estimate_label"] in {"espresso", "cup"}
    assert day["meals"] == 1
    assert day["energy_kcal"] == pytest.approx(analysis["energy_kcal"])
    assert day["carbs_g"] == pytest.approx(analysis["carbs_g"])
