"""The stream worker's own metrics after real batches (BatchProcessor against the real TimescaleDB): the
seconds-since-the-last-reading gauge the silent-device alert reads."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine
from sqlalchemy.exc import ProgrammingError

from schemas.events import Event
from storage.sink import Sink
from streams.processor import FatalBatchError
from streams.telemetry import StreamsMetrics
from tests.streams.conftest import RecordingPublisher
from tests.streams.factories import T0, bp, cgm_trace, meal
from tests.streams.test_processor import FlakySink, as_messages, make_processor

GAUGE = "vitalstream_streams_last_reading_timestamp_seconds"


@pytest.fixture
def sink(engine: Engine) -> Sink:
    return Sink(engine)


def gauge_samples(registry: CollectorRegistry) -> dict[tuple[str, str], float]:
    return {(s.labels["type"], s.labels["source"]): s.value
            for family in registry.collect() if family.name == GAUGE for s in family.samples}


def test_a_stored_batch_sets_the_last_reading_time_per_type_and_source(sink: Sink,
                                                                       publisher: RecordingPublisher) -> None:
    registry = CollectorRegistry()
    metrics = StreamsMetrics.create(registry)
    assert gauge_samples(registry) == {}
    user = "telemetry-a"
    # Readings from 2024: the gauge is the wall clock at storage, not when the readings were taken.
    events: list[Event] = [*cgm_trace(user, T0, [110.0] * 3), bp(user, T0 + timedelta(minutes=2), 128, 82),
                           meal(user, T0)]
    before = time.time()
    asyncio.run(make_processor(sink, publisher, metrics).process_events(as_messages(events)))
    after = time.time()

    samples = gauge_samples(registry)
    assert set(samples) == {("glucose", "device"), ("blood_pressure", "device"), ("meal", "app")}
    assert all(before <= value <= after for value in samples.values()), samples
    # No label names a person.
    assert not [key for family in registry.collect() for s in family.samples for key in s.labels.values()
                if user in key]


def test_a_batch_the_database_rejects_sets_no_last_reading_time(sink: Sink, publisher: RecordingPublisher) -> None:
    registry = CollectorRegistry()
    metrics = StreamsMetrics.create(registry)
    # A missing table, not a refused row: refused rows are dead-lettered and the rest stored (test_storage_rejections).
    failing = FlakySink(sink, 1, ProgrammingError("INSERT", {}, Exception('relation "x" does not exist')))
    with pytest.raises(FatalBatchError):
        asyncio.run(make_processor(failing, publisher, metrics).process_events(
            as_messages(cgm_trace("telemetry-b", T0, [110.0] * 2))))
    assert gauge_samples(registry) == {}
