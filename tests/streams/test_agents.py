"""The agents' wiring, with Faust's test harness (agent.test_context) on memory:// tables (the app's store):
a batch goes through noack_take, is processed and only then acked; a batch that fails is never acked."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from sqlalchemy import Engine, text

from schemas.codec import encode
from schemas.derived import UserProfile
from storage.sink import BatchWrite, Sink, WriteResult
from streams.app import StreamsApp, create_app
from streams.processor import BatchReport
from streams.telemetry import StreamsMetrics
from tests.streams.conftest import RecordingPublisher
from tests.streams.factories import T0, cgm_trace, meal
from vitalstream.config import Settings


class BrokenSink:
    def write(self, batch: BatchWrite) -> WriteResult:
        raise ValueError("constraint violated")

    def write_profiles(self, profiles: Sequence[UserProfile], deleted_user_ids: Sequence[str]) -> None:
        raise ValueError("constraint violated")


def build(sink: Any, publisher: RecordingPublisher, metrics: StreamsMetrics,
          fatal: list[BaseException]) -> StreamsApp:
    settings = Settings(kafka_bootstrap_servers="127.0.0.1:1", streams_app_id="agents-test",
                        streams_topic_prefix="agents-test.", streams_batch_size=50, streams_batch_wait_ms=50)

    async def on_fatal(error: BaseException) -> None:
        fatal.append(error)

    streams = create_app(settings, sink=sink, metrics=metrics, publisher=publisher, on_fatal=on_fatal)
    streams.app.finalize()
    streams.app.flow_control.resume()
    return streams


@pytest.fixture
def fatal() -> Iterator[list[BaseException]]:
    yield []


def test_a_batch_is_processed_stored_and_acked(engine: Engine, publisher: RecordingPublisher,
                                               metrics: StreamsMetrics, fatal: list[BaseException]) -> None:
    streams = build(Sink(engine), publisher, metrics, fatal)
    trace = cgm_trace("agent-u", T0, [100.0, 104.0, 108.0])

    async def run() -> tuple[list[Any], list[BatchReport]]:
        async with streams.events_agent.test_context() as agent:
            # Messages must name the topic they came from: the processor decodes by topic.
            agent.original_channel = streams.app.topic(streams.topics.readings.name)
            events = [await agent.put(encode(r), key=b"agent-u", partition=4, wait=False) for r in trace]
            agent.original_channel = streams.app.topic(streams.topics.meals.name)
            events.append(await agent.put(encode(meal("agent-u", T0)), key=b"agent-u", partition=4, wait=False))
            for _ in range(100):
                if sum(r.events for r in agent.results.values()) == 4:
                    break
                await asyncio.sleep(0.05)
            return events, list(agent.results.values())

    events, reports = asyncio.run(run())
    assert fatal == []
    assert sum(r.events for r in reports) == 4 and sum(r.users_assessed for r in reports) >= 1
    assert all(event.message.acked for event in events)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT glucose_readings, meals FROM daily_totals WHERE user_id = 'agent-u'")
                                  ).one() == (3, 1)
    # The state went to the memory tables, keyed by user and by user|hour.
    assert "agent-u" in streams.tables["vitals"].data
    assert [k for k in streams.tables["glucose-buckets"].data if k.startswith("agent-u|")]


def test_a_failed_batch_is_not_acked(publisher: RecordingPublisher, metrics: StreamsMetrics,
                                     fatal: list[BaseException]) -> None:
    streams = build(BrokenSink(), publisher, metrics, fatal)

    async def run() -> Any:
        async with streams.events_agent.test_context() as agent:
            agent.original_channel = streams.app.topic(streams.topics.meals.name)
            event = await agent.put(encode(meal("agent-v", T0)), key=b"agent-v", wait=False)
            for _ in range(100):
                if fatal:
                    break
                await asyncio.sleep(0.05)
            return event

    event = asyncio.run(run())
    assert [type(e).__name__ for e in fatal] == ["FatalBatchError"]
    assert not event.message.acked
    assert publisher.sent == []
