"""Meal analyses through BatchProcessor into the real TimescaleDB: stored once by id, folded into the meal's daily
totals (the user's values win, the newest analysis fills the rest, a non-food one adds nothing), whichever of meal
and analysis comes first, and appended to the user's feed."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from schemas.codec import encode
from storage.sink import Sink
from streams.messages import InMessage
from streams.telemetry import StreamsMetrics
from tests.streams.conftest import RecordingPublisher
from tests.streams.factories import T0, analysis, meal, photo_meal
from tests.streams.test_processor import TOPICS, as_messages, make_processor


@pytest.fixture
def sink(engine: Engine) -> Sink:
    return Sink(engine)


def totals(engine: Engine, user: str) -> tuple[Any, ...] | None:
    """(meals, energy_kcal, carbs_g, protein_g, fat_g) of the user's only day; None before there is one."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT meals, energy_kcal, carbs_g, protein_g, fat_g FROM daily_totals "
                                       "WHERE user_id = :u"), {"u": user}).all()
    assert len(rows) <= 1, rows
    return tuple(rows[0]) if rows else None


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text(sql), params).all())


def run(processor: Any, events: list[Any]) -> Any:
    return asyncio.run(processor.process_events(as_messages(events)))


def test_a_food_estimate_fills_in_a_meal_without_nutrients(sink: Sink, engine: Engine, publisher: RecordingPublisher,
                                                           metrics: StreamsMetrics) -> None:
    user = "ma-estimate"
    dinner = photo_meal(user, T0)
    analysed = analysis(dinner, kcal=700.0, carbs=80.0, protein=30.0, fat=25.0)
    report = run(make_processor(sink, publisher, metrics), [dinner, analysed])

    assert report.events == 2 and report.dead_letters == []
    assert totals(engine, user) == (1, 700.0, 80.0, 30.0, 25.0)
    stored = rows(engine, "SELECT event_id, meal_event_id, occurred_at, photo_sha256, is_food, scene, top_foods, "
                          "estimate_label, portion_g, models, received_at FROM meal_analyses WHERE user_id = :u",
                  u=user)
    assert [tuple(r) for r in stored] == [(
        analysed.event_id, dinner.event_id, dinner.occurred_at, analysed.photo_sha256, True, "food",
        [{"label": "pizza", "confidence": 0.9}], "pizza", 300.0, [{"name": "meal_analyzer", "version": "1"}],
        analysed.received_at)]
    assert rows(engine, "SELECT count(*) FROM meals WHERE user_id = :u", u=user)[0][0] == 1
    # Analyses are not raw events: the raw tables hold only the meal, and nothing is published for an analysis.
    assert publisher.sent == []
    assert metrics.events.labels("meal_analysis", "stored")._value.get() == 1


def test_a_nutrient_the_user_entered_wins_over_the_estimate(sink: Sink, engine: Engine,
                                                            publisher: RecordingPublisher,
                                                            metrics: StreamsMetrics) -> None:
    user = "ma-entered"
    dinner = photo_meal(user, T0, kcal=450.0, fat=10.0)  # carbs and protein left empty
    lunch = meal(user, T0 + timedelta(hours=1), kcal=500.0, carbs=60.0, protein=20.0, fat=15.0)
    run(make_processor(sink, publisher, metrics),
        [dinner, lunch, analysis(dinner, kcal=700.0, carbs=80.0, protein=30.0, fat=25.0)])
    assert totals(engine, user) == (2, 450.0 + 500.0, 80.0 + 60.0, 30.0 + 20.0, 10.0 + 15.0)


def test_a_non_food_analysis_adds_nothing(sink: Sink, engine: Engine, publisher: RecordingPublisher,
                                          metrics: StreamsMetrics) -> None:
    user = "ma-not-food"
    dinner = photo_meal(user, T0)
    not_food = analysis(dinner, is_food=False)
    run(make_processor(sink, publisher, metrics), [dinner, not_food])
    assert totals(engine, user) == (1, 0.0, 0.0, 0.0, 0.0)
    assert rows(engine, "SELECT is_food, energy_kcal, top_foods FROM meal_analyses WHERE event_id = :e",
                e=not_food.event_id) == [(False, None, [])]


def test_an_analysis_before_its_meal_counts_once_the_meal_arrives(sink: Sink, engine: Engine,
                                                                  publisher: RecordingPublisher,
                                                                  metrics: StreamsMetrics) -> None:
    user = "ma-early"
    dinner = photo_meal(user, T0)
    processor = make_processor(sink, publisher, metrics)
    run(processor, [analysis(dinner, kcal=640.0, carbs=70.0)])
    assert rows(engine, "SELECT count(*) FROM meal_analyses WHERE user_id = :u", u=user)[0][0] == 1
    assert totals(engine, user) == (0, 0.0, 0.0, 0.0, 0.0)  # no meal yet, so no estimate counted
    run(processor, [dinner])
    assert totals(engine, user) == (1, 640.0, 70.0, 30.0, 25.0)
    # In one batch, the analysis ahead of its meal, the same holds.
    other = photo_meal(user, T0 + timedelta(hours=2))
    run(processor, [analysis(other, kcal=100.0, carbs=10.0, protein=5.0, fat=1.0), other])
    assert totals(engine, user) == (2, 740.0, 80.0, 35.0, 26.0)


def test_replaying_an_analysis_changes_nothing(sink: Sink, engine: Engine, publisher: RecordingPublisher,
                                               metrics: StreamsMetrics) -> None:
    user = "ma-replay"
    dinner = photo_meal(user, T0)
    batch = [dinner, analysis(dinner)]
    processor = make_processor(sink, publisher, metrics)
    run(processor, batch)
    before = (totals(engine, user), rows(engine, "SELECT * FROM meal_analyses WHERE user_id = :u", u=user),
              rows(engine, "SELECT id, source_event_id FROM user_feed WHERE user_id = :u", u=user))
    report = run(processor, batch)
    after = (totals(engine, user), rows(engine, "SELECT * FROM meal_analyses WHERE user_id = :u", u=user),
             rows(engine, "SELECT id, source_event_id FROM user_feed WHERE user_id = :u", u=user))
    assert after == before and len(after[1]) == 1 and len(after[2]) == 1
    assert report.written is not None and report.written.new_rows["meal_analysis"] == 0
    assert report.written.feed_rows == 0
    assert metrics.events.labels("meal_analysis", "duplicate")._value.get() == 1


def test_a_reanalysis_by_newer_models_is_a_second_row_and_the_newest_counts(
        sink: Sink, engine: Engine, publisher: RecordingPublisher, metrics: StreamsMetrics) -> None:
    user = "ma-models"
    dinner = photo_meal(user, T0)
    first = analysis(dinner, version="1", kcal=700.0, analysed_after=timedelta(seconds=5))
    second = analysis(dinner, version="2", kcal=900.0, carbs=95.0, analysed_after=timedelta(days=1))
    processor = make_processor(sink, publisher, metrics)
    run(processor, [dinner, first])
    run(processor, [second])
    assert first.event_id != second.event_id
    assert rows(engine, "SELECT count(*) FROM meal_analyses WHERE meal_event_id = :m", m=dinner.event_id)[0][0] == 2
    assert totals(engine, user) == (1, 900.0, 95.0, 30.0, 25.0)
    # Order-independent: the older analysis delivered again afterwards does not take over.
    run(processor, [first])
    assert totals(engine, user) == (1, 900.0, 95.0, 30.0, 25.0)
    # A still newer analysis that sees no food withdraws the estimate: the newest analysis is the better judge.
    run(processor, [analysis(dinner, version="3", is_food=False, analysed_after=timedelta(days=2))])
    assert totals(engine, user) == (1, 0.0, 0.0, 0.0, 0.0)
    assert rows(engine, "SELECT count(*) FROM user_feed WHERE user_id = :u AND kind = 'meal_analysis'",
                u=user)[0][0] == 3


def test_an_analysis_counts_on_its_meal_s_local_day(sink: Sink, engine: Engine, publisher: RecordingPublisher,
                                                    metrics: StreamsMetrics) -> None:
    user = "ma-seoul"
    processor = make_processor(sink, publisher, metrics)
    profile = {"user_id": user, "time_zone": "Asia/Seoul", "updated_at": "2024-01-01T00:00:00Z"}
    asyncio.run(processor.process_profiles([InMessage(TOPICS.profiles.name, 0, 1, user.encode(),
                                                      json.dumps(profile).encode(), 0.0)]))
    dinner = photo_meal(user, T0.replace(hour=15, minute=30))  # 00:30 on 2 June in Seoul
    run(processor, [analysis(dinner, kcal=333.0)])
    run(processor, [dinner])
    assert [tuple(r) for r in rows(engine, "SELECT day::text, energy_kcal FROM daily_totals WHERE user_id = :u",
                                   u=user)] == [("2024-06-02", 333.0)]


def test_poison_analyses_go_to_the_dead_letter_topic_with_a_reason(sink: Sink, engine: Engine,
                                                                   publisher: RecordingPublisher,
                                                                   metrics: StreamsMetrics) -> None:
    user = "ma-poison"
    good = analysis(photo_meal(user, T0))
    payload = json.loads(encode(good))
    forged = json.dumps({**payload, "event_id": "00000000-0000-0000-0000-000000000001"}).encode()
    too_sure = json.dumps({**payload, "food_score": 1.5}).encode()
    topic = TOPICS.meal_analyses.name
    messages = [InMessage(topic, 0, 1, user.encode(), forged, 0.0),
                InMessage(topic, 0, 2, user.encode(), too_sure, 0.0),
                InMessage(topic, 0, 3, b"someone-else", encode(good), 0.0),
                InMessage(topic, 0, 4, user.encode(), b"\x00not json", 0.0)]
    report = asyncio.run(make_processor(sink, publisher, metrics).process_events(messages))
    assert [d.reason.value for d in report.dead_letters] == ["schema_invalid", "out_of_range", "key_mismatch",
                                                             "undecodable"]
    dead = publisher.on(TOPICS.dead_letter)
    assert [dict(m.headers)["source_topic"] for m in dead] == [topic.encode()] * 4
    assert b"event_id must be uuid5" in dict(dead[0].headers)["error"]
    assert rows(engine, "SELECT count(*) FROM meal_analyses WHERE user_id = :u", u=user)[0][0] == 0
