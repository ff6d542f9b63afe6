"""Events the contract accepts but the database refuses for good: the batch is stored user by user, the refused
events go to the dead-letter topic (storage_rejected) and everything else is stored, published and remembered.

The module's own database gets CHECK constraints that refuse one device id and one user's glucose metrics: a
real rejection by TimescaleDB (IntegrityError), as a constraint added by a later migration would give.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError

from schemas.events import Event
from storage.sink import BatchWrite, Sink
from streams.messages import DeadLetterReason, OutMessage
from streams.processor import Stores
from streams.rejections import is_rejection, rejection_message
from streams.telemetry import StreamsMetrics
from tests.streams.conftest import MemoryStore, RecordingPublisher
from tests.streams.factories import T0, bp, cgm, cgm_trace
from tests.streams.test_processor import TOPICS, as_messages, make_processor, scalar

REFUSED_DEVICE = "refused-by-db"
REFUSED_METRICS_USER = "rej-derived"


@pytest.fixture(scope="module", autouse=True)
def constraints(engine: Engine) -> Iterator[None]:
    with engine.begin() as connection:
        connection.execute(text(f"ALTER TABLE glucose_readings ADD CONSTRAINT refuse_device "
                                f"CHECK (device_id <> '{REFUSED_DEVICE}')"))
        connection.execute(text(f"ALTER TABLE glucose_metrics ADD CONSTRAINT refuse_user "
                                f"CHECK (user_id <> '{REFUSED_METRICS_USER}')"))
    yield


@pytest.fixture
def sink(engine: Engine) -> Sink:
    return Sink(engine)


def counter(metrics: StreamsMetrics, name: str, **labels: str) -> float:
    value = metrics.events.labels(**labels) if name == "events" else metrics.dead_letters.labels(**labels)
    return float(value._value.get())


def header(message: OutMessage, name: str) -> str:
    return next(value.decode() for key, value in message.headers if key == name)


def snapshot(engine: Engine, users: list[str]) -> list[object]:
    """Every row the batch can touch, as text (updated_at of days excluded: a replay may refresh it)."""
    queries = ["SELECT user_id, event_id::text, device_id FROM glucose_readings",
               "SELECT user_id, event_id::text FROM blood_pressure_readings",
               "SELECT user_id, \"window\", as_of_hour::text, readings, mean_mg_dl FROM glucose_metrics",
               "SELECT user_id, as_of::text, tier FROM risk_tiers",
               "SELECT user_id, metric, value FROM user_metrics_current",
               "SELECT user_id, day::text, glucose_readings, bp_readings FROM daily_totals",
               "SELECT user_id, kind, source_event_id::text FROM user_feed"]
    with engine.connect() as connection:
        return [sorted(tuple(row) for row in connection.execute(text(f"{sql} WHERE user_id = ANY(:u)"),
                                                                {"u": users}))
                for sql in queries]


def test_the_database_message_of_a_nul_byte_names_no_values(sink: Sink) -> None:
    # The contract refuses control characters; the database refuses NUL even if a contract ever let one through.
    event = cgm("rej-nul", T0, 100.0).model_copy(update={"device_id": "cgm\x00secret"})
    with pytest.raises(DataError) as raised:
        sink.write(BatchWrite(events=[event]))
    assert is_rejection(raised.value)
    message = rejection_message(raised.value)
    assert "NUL" in message and "secret" not in message and "rej-nul" not in message


def test_one_refused_event_is_dead_lettered_and_the_rest_of_the_batch_is_stored(
        sink: Sink, engine: Engine, publisher: RecordingPublisher, metrics: StreamsMetrics) -> None:
    users = [f"rej-{i}" for i in range(6)]
    events: list[Event] = []
    for user in users:
        trace = cgm_trace(user, T0, [110.0 + i for i in range(12)])
        if user == "rej-2":
            trace[5] = trace[5].model_copy(update={"device_id": REFUSED_DEVICE})
        events += [*trace, bp(user, T0 + timedelta(minutes=3), 150, 95)]
    messages = as_messages(events)
    poison = next(m for m in messages if m.value and REFUSED_DEVICE.encode() in m.value)
    vitals = MemoryStore()
    processor = make_processor(sink, publisher, metrics, Stores(MemoryStore(), vitals, MemoryStore()))

    report = asyncio.run(processor.process_events(messages))

    assert [(d.reason, d.message.offset) for d in report.dead_letters] == \
        [(DeadLetterReason.STORAGE_REJECTED, poison.offset)]
    [dead] = publisher.on(TOPICS.dead_letter)
    assert dead.value == poison.value and header(dead, "reason") == "storage_rejected"
    error = header(dead, "error")
    assert "violates check constraint" in error and not any(user in error for user in users)
    for user in users:
        stored = 11 if user == "rej-2" else 12
        assert scalar(engine, "SELECT count(*) FROM glucose_readings WHERE user_id = :u", u=user) == stored
        assert scalar(engine, "SELECT glucose_readings + bp_readings FROM daily_totals WHERE user_id = :u",
                      u=user) == stored + 1
        assert scalar(engine, "SELECT readings FROM glucose_metrics WHERE user_id = :u AND \"window\" = '14d'",
                      u=user) == stored
        assert scalar(engine, "SELECT tier FROM risk_tiers WHERE user_id = :u", u=user) is not None
        assert user in vitals.data  # remembered, so the batch can be acked
    assert len(publisher.on(TOPICS.risk_tiers)) == len(users)
    assert counter(metrics, "dead_letters", reason="storage_rejected") == 1
    assert counter(metrics, "events", type="glucose", outcome="dead_letter") == 1
    assert counter(metrics, "events", type="glucose", outcome="stored") == 71
    assert counter(metrics, "events", type="glucose", outcome="duplicate") == 0
    assert counter(metrics, "events", type="blood_pressure", outcome="stored") == 6

    before = snapshot(engine, users)
    sent = len(publisher.sent)
    replay = asyncio.run(processor.process_events(messages))
    assert snapshot(engine, users) == before
    assert [d.message.offset for d in replay.dead_letters] == [poison.offset]
    # Only the dead letter goes out again (at least once); the tiers were recorded as published.
    assert [m.topic for m in publisher.sent[sent:]] == [TOPICS.dead_letter]
    assert counter(metrics, "events", type="glucose", outcome="duplicate") == 71


def test_refused_derived_rows_leave_the_events_stored_and_nothing_published(
        sink: Sink, engine: Engine, publisher: RecordingPublisher, metrics: StreamsMetrics) -> None:
    other = "rej-derived-neighbour"
    # A level 2 low: the alert is due, but must not go out for the user whose metrics the database refuses.
    low = [120.0] * 8 + [50.0] * 4
    events = [*cgm_trace(REFUSED_METRICS_USER, T0, low), *cgm_trace(other, T0, low)]
    vitals = MemoryStore()
    processor = make_processor(sink, publisher, metrics, Stores(MemoryStore(), vitals, MemoryStore()))

    report = asyncio.run(processor.process_events(as_messages(events)))

    assert report.dead_letters == [] and metrics.assessment_errors._value.get() == 1
    for user in (REFUSED_METRICS_USER, other):
        assert scalar(engine, "SELECT count(*) FROM glucose_readings WHERE user_id = :u", u=user) == 12
    assert scalar(engine, "SELECT count(*) FROM glucose_metrics WHERE user_id = :u", u=REFUSED_METRICS_USER) == 0
    assert scalar(engine, "SELECT count(*) FROM daily_totals WHERE user_id = :u", u=REFUSED_METRICS_USER) == 0
    assert scalar(engine, "SELECT count(*) FROM glucose_metrics WHERE user_id = :u", u=other) > 0
    published_for = {m.key for m in publisher.sent}
    assert published_for == {other.encode()}
    assert counter(metrics, "events", type="glucose", outcome="stored") == 24
    # The refused user's readings are in their state; nothing is recorded as published for them.
    assert REFUSED_METRICS_USER in vitals.data
