"""The users' feed (user_feed) as the stream worker fills it, against the real TimescaleDB: one row per alert,
risk-tier change and meal analysis, written in the batch's transaction, and none again on a replay."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import Engine, text

from storage.feed import FeedKind, feed_row
from storage.sink import BatchWrite, Sink
from streams.processor import Stores
from streams.telemetry import StreamsMetrics
from tests.streams.conftest import MemoryStore, RecordingPublisher
from tests.streams.factories import T0, analysis, bp, photo_meal
from tests.streams.test_processor import TOPICS, as_messages, make_processor


@pytest.fixture
def sink(engine: Engine) -> Sink:
    return Sink(engine)


def feed(engine: Engine, user: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(kind, source_event_id, payload) of the user's rows, in feed order."""
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT kind, source_event_id, payload FROM user_feed WHERE user_id = :u "
                                       "ORDER BY id"), {"u": user}).all()
    return [(r[0], str(r[1]), r[2]) for r in rows]


def published_ids(publisher: RecordingPublisher, topic: str) -> list[str]:
    return [json.loads(m.value)["event_id"] for m in publisher.on(topic) if m.value]


def test_every_published_alert_and_tier_change_is_in_the_feed_once(sink: Sink, engine: Engine,
                                                                    publisher: RecordingPublisher,
                                                                    metrics: StreamsMetrics) -> None:
    user = "feed-crisis"
    dinner = photo_meal(user, T0)
    analysed = analysis(dinner)
    messages = as_messages([bp(user, T0, 200, 110), dinner, analysed])
    vitals = MemoryStore()
    stores = Stores(MemoryStore(), vitals, MemoryStore())
    report = asyncio.run(make_processor(sink, publisher, metrics, stores).process_events(messages))

    alerts, tiers = published_ids(publisher, TOPICS.alerts), published_ids(publisher, TOPICS.risk_tiers)
    assert len(alerts) == 1 and len(tiers) == 1
    rows = feed(engine, user)
    assert sorted((kind, source) for kind, source, _ in rows) == sorted(
        [("alert", alerts[0]), ("risk_tier_changed", tiers[0]), ("meal_analysis", str(analysed.event_id))])
    payloads = {kind: payload for kind, _, payload in rows}
    assert payloads["alert"]["kind"] == "hypertensive_crisis" and payloads["risk_tier_changed"]["tier"] == "urgent"
    assert payloads["meal_analysis"]["meal_event_id"] == str(dinner.event_id)
    assert report.written is not None and report.written.feed_rows == 3

    # A replay with the state recorded publishes nothing and adds nothing.
    asyncio.run(make_processor(sink, publisher, metrics, stores).process_events(messages))
    assert feed(engine, user) == rows
    # A replay after the state write was lost publishes the same ids again; the feed still holds each once.
    vitals.data.clear()
    asyncio.run(make_processor(sink, publisher, metrics, stores).process_events(messages))
    assert published_ids(publisher, TOPICS.alerts) == alerts * 2
    assert feed(engine, user) == rows


def test_feed_rows_share_the_batch_s_transaction(sink: Sink, engine: Engine) -> None:
    user = "feed-atomic"
    dinner = photo_meal(user, T0)
    analysed = analysis(dinner)
    bad = {**feed_row(analysed, FeedKind.MEAL_ANALYSIS), "kind": "meal_analysys"}
    with pytest.raises(ValueError, match="meal_analysys"):
        sink.write(BatchWrite(events=[dinner], meal_analyses=[analysed], feed=[bad]))
    # The feed failed last, so the meal and the analysis written before it in the transaction are gone too.
    with engine.connect() as connection:
        assert connection.execute(text("SELECT (SELECT count(*) FROM meals WHERE user_id = :u) + "
                                       "(SELECT count(*) FROM meal_analyses WHERE user_id = :u)"),
                                  {"u": user}).scalar_one() == 0
    result = sink.write(BatchWrite(events=[dinner], meal_analyses=[analysed],
                                   feed=[feed_row(analysed, FeedKind.MEAL_ANALYSIS)]))
    assert (result.new_rows, result.feed_rows) == ({"meal": 1, "meal_analysis": 1}, 1)
    assert [kind for kind, _, _ in feed(engine, user)] == ["meal_analysis"]
