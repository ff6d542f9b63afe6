"""The consumer against the real local Kafka and Triton: photos in, MealAnalyzed (or dead letters) out,
offsets committed only once every output is delivered."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import Message

from inference_consumer.dead_letters import DeadLetterReason
from producers.photos import render_meal_photo
from schemas.codec import decode
from schemas.events import MealLogged, PhotoContentType
from schemas.meal_analysis import MealAnalyzed, analysis_id
from schemas.topics import MEAL_ANALYSES, MEALS
from stack.probes import free_port
from tests.inference.conftest import DeploymentFactory
from tests.inference.deployment import Deployment
from tests.inference.test_photos import png_header_only

pytestmark = [pytest.mark.stack, pytest.mark.slow]


def _content_type(path: Path) -> PhotoContentType:
    return PhotoContentType.PNG if path.suffix == ".png" else PhotoContentType.JPEG


def _analyses(deployment: Deployment, expect: int, timeout_s: float = 60.0) -> list[tuple[Message, MealAnalyzed]]:
    messages = deployment.consume(deployment.topics.analyses.name, expect=expect, timeout_s=timeout_s)
    return [(m, decode(MEAL_ANALYSES, m.value() or b"")) for m in messages]


def _meal_partitions(deployment: Deployment, expect: int) -> dict[str, tuple[int, int]]:
    """Meal event id → (partition, offset) of its message."""
    messages = deployment.consume(deployment.topics.meals.name, expect=expect)
    found = {}
    for message in messages:
        try:
            meal: MealLogged = decode(MEALS, message.value() or b"")
        except ValueError:
            continue
        found[str(meal.event_id)] = (message.partition() or 0, message.offset() or 0)
    return found


def _headers(message: Message) -> dict[str, str]:
    raw = message.headers() or []
    pairs = raw.items() if isinstance(raw, dict) else raw  # consumed messages carry a list of pairs
    return {k: v.decode() if isinstance(v, bytes) else str(v) for k, v in pairs}


def test_photos_are_analysed_co_partitioned_and_committed(deployment: DeploymentFactory, triton_url: str,
                                                          photos: Path) -> None:
    d = deployment(triton_url=triton_url, triton_protocol="grpc")
    meals: dict[str, MealLogged] = {}
    for i, path in enumerate(sorted(photos.iterdir())):
        ref = d.put_photo(path.read_bytes(), f"user-{i}/{path.name}", _content_type(path))
        meals[path.name] = d.meal(ref, user=f"user-{i}")
    d.send([*meals.values(), d.meal(None, user="no-photo")])

    with d.running() as running:
        found = _analyses(d, expect=len(meals))
        d.wait_for(d.fully_committed, timeout_s=15, what="every meal's offset committed")
        assert running.metric("vitalstream_inference_images_total") == len(meals)
        assert running.metric("vitalstream_inference_messages_total", outcome="no_photo") == 1
        assert running.metric("vitalstream_inference_batch_size_sum") == len(meals)
        assert running.metric("vitalstream_inference_triton_seconds_count") >= 1

    assert len(found) == len(meals), "one analysis per photo, none for the meal without one"
    by_photo = {name: event for name, meal in meals.items() for _, event in found
                if event.meal_event_id == meal.event_id}
    assert set(by_photo) == set(meals)
    where = _meal_partitions(d, expect=len(meals) + 1)
    for message, event in found:
        meal = next(m for m in meals.values() if m.event_id == event.meal_event_id)
        assert message.key() == meal.user_id.encode() and event.user_id == meal.user_id
        assert message.partition() == where[str(meal.event_id)][0], "keyed by user: the meal's partition number"
        assert _headers(message)["type"] == "meal_analysis"
        assert meal.photo is not None
        assert event.event_id == analysis_id(meal.event_id, meal.photo.sha256, event.models)
        assert [(m.name, m.version) for m in event.models] == [("meal_analyzer", "1")]

    coffee = by_photo["coffee.png"]
    assert coffee.is_food and coffee.top_foods[0].label == "espresso" and coffee.estimate_label == "espresso"
    for name in ("meal_1.jpg", "meal_2.jpg"):
        plated = by_photo[name]
        assert plated.is_food and plated.gate_food_prob > 0.5 and plated.scene == "food"
        assert plated.energy_kcal and plated.carbs_g is not None and plated.fat_g is not None
    for name in ("other_1.jpg", "other_2.jpg", "report_1.jpg", "report_2.jpg", "chelsea.png"):
        not_food = by_photo[name]
        assert not not_food.is_food and not_food.food_score < 0.5, (name, not_food.food_score)
        assert not_food.top_foods == [] and not_food.energy_kcal is None and not_food.estimate_label is None
    assert {by_photo[n].scene for n in ("report_1.jpg", "report_2.jpg")} == {"report"}
    assert d.consume(d.topics.dead_letter.name, expect=0, timeout_s=2) == []


def test_poison_meals_go_to_the_dead_letter_topic_with_why_and_where_from(deployment: DeploymentFactory,
                                                                           triton_url: str) -> None:
    d = deployment(triton_url=triton_url)
    good = d.meal(d.put_photo(render_meal_photo(seed=11), "u/good.jpg"), user="good")
    store = d.store
    tampered = render_meal_photo(seed=12)
    tampered_ref = d.put_photo(tampered, "u/tampered.jpg")
    store.put(tampered_ref.object_key, tampered[:-1] + bytes([tampered[-1] ^ 0xFF]))  # same size, other bytes
    sized = d.put_photo(render_meal_photo(seed=13), "u/sized.jpg")
    expected = {
        "missing_object": d.meal(d.put_photo(render_meal_photo(seed=15), "u/gone.jpg").model_copy(
            update={"object_key": "u/never-uploaded.jpg"}), user="a"),
        "hash_mismatch": d.meal(tampered_ref, user="b"),
        "size_mismatch": d.meal(sized.model_copy(update={"size_bytes": sized.size_bytes + 10}), user="c"),
        "not_an_image": d.meal(d.put_photo(b"%PDF-1.4 lab report", "u/report.jpg"), user="d"),
        "decompression_bomb": d.meal(d.put_photo(png_header_only(10_000, 6_000), "u/bomb.png",
                                                 PhotoContentType.PNG), user="e"),
        "content_type_mismatch": d.meal(d.put_photo(png_header_only(64, 64), "u/png.jpg"), user="f"),
    }
    with d.producer() as producer:
        for meal in [good, *expected.values()]:
            producer.send(d.topics.meals, meal)
        producer.produce(d.topics.meals.name, b'{"type": "meal", "user_id": ', key=b"g")  # not JSON at all

    with d.running() as running:
        letters = d.consume(d.topics.dead_letter.name, expect=len(expected) + 1)
        analyses = _analyses(d, expect=1)
        d.wait_for(d.fully_committed, timeout_s=15, what="poison offsets committed too")
        for reason in expected:
            assert running.metric("vitalstream_inference_errors_total", reason=reason) == 1, reason

    assert [event.meal_event_id for _, event in analyses] == [good.event_id], "the good photo still goes through"
    where = _meal_partitions(d, expect=len(expected) + 2)
    by_reason = {_headers(m)["reason"]: m for m in letters}
    assert set(by_reason) == {*expected, DeadLetterReason.SCHEMA_INVALID.value}
    for reason, meal in expected.items():
        letter, headers = by_reason[reason], _headers(by_reason[reason])
        assert letter.key() == meal.user_id.encode()
        assert decode(MEALS, letter.value() or b"") == meal, "the original bytes are kept"
        assert headers["source_topic"] == d.topics.meals.name
        assert (int(headers["source_partition"]), int(headers["source_offset"])) == where[str(meal.event_id)]
        assert headers["consumer"] == d.settings.inference_group_id and headers["error"]
    invalid = by_reason["schema_invalid"]
    assert invalid.value() == b'{"type": "meal", "user_id": ' and "Invalid JSON" in _headers(invalid)["error"]


def test_a_meal_not_analysed_before_its_deadline_is_dead_lettered_while_triton_is_unreachable(
        deployment: DeploymentFactory) -> None:
    # Nothing listens on this port: Triton is down for the whole test (real connection refusals, no stand-in).
    d = deployment(triton_url=f"127.0.0.1:{free_port()}", inference_deadline_s=2.0)
    meals = [d.meal(d.put_photo(render_meal_photo(seed=20 + i), f"u/{i}.jpg"), user=f"u{i}") for i in range(3)]
    d.send(meals)
    with d.running() as running:
        d.wait_for(lambda: running.metric("vitalstream_inference_paused") == 1, timeout_s=15,
                   what="partitions paused while Triton is unreachable")
        letters = d.consume(d.topics.dead_letter.name, expect=len(meals), timeout_s=20)
        d.wait_for(d.fully_committed, timeout_s=15, what="dead-lettered offsets committed")
        assert running.metric("vitalstream_inference_errors_total", reason="triton_unavailable") >= 1
        assert running.metric("vitalstream_inference_paused") == 1, "still down: still paused"
    assert sorted(_headers(m)["reason"] for m in letters) == ["deadline_exceeded"] * len(meals)
    assert all("within 2 s" in _headers(m)["error"] or "deadline passed" in _headers(m)["error"] for m in letters)
    assert d.consume(d.topics.analyses.name, expect=0, timeout_s=1) == []


def test_over_http_a_batch_larger_than_the_models_is_split(deployment: DeploymentFactory, triton_http_url: str,
                                                            photos: Path) -> None:
    # meal_analyzer takes 16 photos at most; the consumer is allowed 32 and waits long enough to gather 20.
    d = deployment(triton_url=triton_http_url, triton_protocol="http", inference_max_batch=32,
                   inference_max_wait_ms=1000)
    coffee = d.meal(d.put_photo((photos / "coffee.png").read_bytes(), "u/coffee.png", PhotoContentType.PNG))
    meals = [coffee] + [d.meal(d.put_photo(render_meal_photo(seed=40 + i), f"u/{i}.jpg"), user=f"u{i}")
                        for i in range(19)]
    d.send(meals)
    with d.running() as running:
        found = _analyses(d, expect=len(meals))
        assert running.metric("vitalstream_inference_batch_size_sum") == len(meals)
        at_most_16 = running.metric("vitalstream_inference_batch_size_bucket", le="16.0")
        assert at_most_16 < running.metric("vitalstream_inference_batch_size_count"), "a batch above 16 was sent"
    assert len(found) == len(meals)
    assert next(e for _, e in found if e.meal_event_id == coffee.event_id).top_foods[0].label == "espresso"
    assert d.consume(d.topics.dead_letter.name, expect=0, timeout_s=1) == []


def test_a_second_replica_joining_mid_stream_takes_half_and_nothing_is_lost(deployment: DeploymentFactory,
                                                                             triton_url: str) -> None:
    # Kafka 2.3 rebalances eagerly: the first replica gives up every partition, drops what it has in flight and
    # commits what it published; both then resume from the commits. Repeats are possible, lost photos are not.
    d = deployment(triton_url=triton_url)
    meals = [d.meal(d.put_photo(render_meal_photo(seed=300 + i), f"u{i % 24}/{i}.jpg"), user=f"u{i % 24}")
             for i in range(240)]
    sent = d.send_paced(meals, per_s=30)
    with d.running() as first:
        d.wait_for(lambda: first.consumer.counts["analysed"] >= 40, timeout_s=60, what="the first replica working")
        with d.running() as second:
            assert sent.wait(30)
            found = _analyses(d, expect=len(meals), timeout_s=90)
            d.wait_for(d.fully_committed, timeout_s=30, what="every offset committed by one replica or the other")
            assert second.consumer.counts["analysed"] > 0, "the second replica got partitions"
    ids = {event.event_id for _, event in found}
    assert {event.meal_event_id for _, event in found} == {m.event_id for m in meals}, "0 lost"
    assert len(ids) == len(meals), "a repeat has the same id as its original (downstream drops it)"
    print(f"\nrebalance: {len(found)} analyses published for {len(meals)} photos, {len(ids)} distinct ids")
