"""End to end: a meal photo uploaded through the API is analysed by the real inference consumer on the local
Triton, and its MealAnalyzed event names the food.

The API publishes to the shared meals topic, so the consumer reads that topic from its current end (a fresh
consumer group whose offsets are committed there first) and writes its results to private, prefixed topics.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from schemas.codec import decode
from schemas.meal_analysis import MealAnalyzed
from schemas.topics import MEAL_ANALYSES, MEALS
from tests.api.conftest import Account, AppFactory
from tests.api.images import coffee_photo
from tests.inference.deployment import Deployment

pytestmark = [pytest.mark.stack, pytest.mark.slow]


@pytest.fixture(scope="module")
def coffee_png() -> bytes:
    return coffee_photo()


@pytest.fixture
def consumer_on_shared_meals(kafka_with_topics: str, triton_url: str, tmp_path: Path) -> Iterator[Deployment]:
    """The inference consumer, in a thread: shared meals topic in (from its current end), private topics out."""
    deployment = Deployment.create(kafka_with_topics, tmp_path / "inference", triton_url=triton_url,
                                   triton_protocol="grpc", object_store_dir=tmp_path / "objects")
    deployment.start_at_end(MEALS.name)
    try:
        with deployment.running(replace(deployment.topics, meals=MEALS)):
            yield deployment
    finally:
        deployment.close()


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
