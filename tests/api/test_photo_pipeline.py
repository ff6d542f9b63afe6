"""End to end: a meal photo uploaded through the API is analysed by the real inference consumer on the local
Triton, and its MealAnalyzed event names the food.

The API publishes to the shared meals topic, so the consumer reads that topic from its current end (a fresh
consumer group whose offsets are committed there first) and writes its results to private, prefixed topics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client import CollectorRegistry

from inference_consumer.consumer import InferenceConsumer
from inference_consumer.metrics import InferenceMetrics
from inference_consumer.models import build, fetch
from schemas.codec import decode
from schemas.meal_analysis import MealAnalyzed
from schemas.topics import MEAL_ANALYSES, MEALS
from tests.api.conftest import Account, AppFactory
from tests.inference.deployment import Deployment
from vitalstream.config import Settings

pytestmark = [pytest.mark.stack, pytest.mark.slow]


@pytest.fixture(scope="module")
def coffee_png() -> bytes:
    """scikit-image's coffee photo, fetched with the model weights (an espresso cup on a saucer)."""
    settings = Settings()
    fetch.fetch(settings)  # a no-op once cached
    return (build.photos_dir(settings) / "coffee.png").read_bytes()


def _commit_at_end(kafka: str, group_id: str, topic: str) -> None:
    """Make `group_id` start at the topic's current end: it must not analyse every earlier meal."""
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": group_id, "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = [TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
                for p in partitions]
        consumer.commit(offsets=ends, asynchronous=False)
    finally:
        consumer.close()


@pytest.fixture
def consumer_on_shared_meals(kafka_with_topics: str, triton_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """The inference consumer, in a thread: shared meals topic in, private topics out, the given object store."""
    deployment = Deployment.create(kafka_with_topics, tmp_path / "inference", triton_url=triton_url,
                                   triton_protocol="grpc", object_store_dir=tmp_path / "objects")
    _commit_at_end(kafka_with_topics, deployment.settings.inference_group_id, MEALS.name)
    consumer = InferenceConsumer(deployment.settings, InferenceMetrics.create(CollectorRegistry()))
    consumer.topics = replace(deployment.topics, meals=MEALS)
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            consumer.run(stop)
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=run, name="inference-consumer", daemon=True)
    thread.start()
    try:
        yield deployment
    finally:
        stop.set()
        thread.join(60)
        deployment.close()
    assert not thread.is_alive() and not errors, errors


def test_a_coffee_photo_uploaded_through_the_api_comes_back_as_espresso(
        app_factory: AppFactory, account: Account, consumer_on_shared_meals: Deployment, coffee_png: bytes) -> None:
    deployment = consumer_on_shared_meals
    api = app_factory(object_store_dir=deployment.settings.object_store_dir)
    response = api.post("/v1/meals/photo", files={"image": ("coffee.png", coffee_png, "image/png")},
                        data={"meal_slot": "snack", "occurred_at": "2026-01-10T09:30:00+09:00"}, headers=account.auth)
    assert response.status_code == 202, response.text
    event_id = response.json()["event_ids"][0]

    analyses_topic = deployment.topics.analyses.name
    deadline = time.monotonic() + 90
    found: list[MealAnalyzed] = []
    while not found and time.monotonic() < deadline:
        messages = deployment.consume(analyses_topic, expect=1, timeout_s=5)
        found = [event for event in (decode(MEAL_ANALYSES, m.value() or b"") for m in messages)
                 if str(event.meal_event_id) == event_id]
    assert found, f"no MealAnalyzed for meal {event_id} on {analyses_topic} within 90 s"
    analysis = found[0]
    assert analysis.user_id == account.user_id
    assert analysis.is_food and analysis.top_foods[0].label == "espresso"
    assert analysis.estimate_label == "espresso"
