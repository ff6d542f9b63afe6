"""BatchProcessor against the real TimescaleDB, with in-memory state stores and a recording publisher:
what a batch stores and publishes, and that replays (after a crash at any step) change nothing."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from schemas.codec import encode
from schemas.derived import UserProfile
from schemas.events import Event
from storage.sink import BatchWrite, Sink, WriteResult
from streams.app import topic_names
from streams.messages import InMessage
from streams.metrics import BpGuideline
from streams.processor import BatchProcessor, FatalBatchError, Stores
from streams.telemetry import StreamsMetrics
from tests.streams.conftest import MemoryStore, RecordingPublisher
from tests.streams.factories import T0, bp, cgm_trace, exercise, meal

TOPICS = topic_names("test.")
_offsets = itertools.count()


def as_messages(events: Sequence[Event], partition: int = 0) -> list[InMessage]:
    out = []
    for event in events:
        topic = {"meal": TOPICS.meals, "meal_analysis": TOPICS.meal_analyses}.get(getattr(event, "type", ""),
                                                                               TOPICS.readings)
        out.append(InMessage(topic=topic.name, partition=partition, offset=next(_offsets),
                             key=event.user_id.encode(), value=encode(event), timestamp_s=event.received_at.timestamp(),
                             headers=[("type", str(getattr(event, "type", "")).encode())]))
    return out


class FlakySink:
    """The real sink, failing the first `failures` writes with the given error."""

    def __init__(self, sink: Sink, failures: int, error: Exception) -> None:
        self.sink, self.failures, self.error = sink, failures, error

    def write(self, batch: BatchWrite) -> WriteResult:
        if self.failures:
            self.failures -= 1
            raise self.error
        return self.sink.write(batch)

    def write_profiles(self, profiles: Sequence[UserProfile], deleted_user_ids: Sequence[str]) -> None:
        self.sink.write_profiles(profiles, deleted_user_ids)


def make_processor(sink: Any, publisher: RecordingPublisher, metrics: StreamsMetrics,
                   stores: Stores | None = None) -> BatchProcessor:
    return BatchProcessor(stores=stores or Stores(MemoryStore(), MemoryStore(), MemoryStore()), sink=sink,
                          publisher=publisher, topics=TOPICS, metrics=metrics,
                          default_guideline=BpGuideline.ACC_AHA_2017, clock=lambda: T0.timestamp() + 60)


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql), params).scalar_one()


@pytest.fixture
def sink(engine: Engine) -> Sink:
    return Sink(engine)


def test_a_batch_stores_rows_and_publishes_derived_events(sink: Sink, engine: Engine, publisher: RecordingPublisher,
                                                          metrics: StreamsMetrics) -> None:
    user = "proc-a"
    events: list[Event] = [*cgm_trace(user, T0, [120.0] * 10 + [50.0] * 4 + [110.0] * 4),
                           bp(user, T0 + timedelta(minutes=7), 182, 95), meal(user, T0, kcal=650.0, carbs=80.0),
                           exercise(user, T0 + timedelta(hours=1), 40, kcal=200.0, steps=4000)]
    messages = as_messages(events)
    messages.insert(3, InMessage(TOPICS.readings.name, 0, next(_offsets), user.encode(), b"{oops", 0.0))
    report = asyncio.run(make_processor(sink, publisher, metrics).process_events(messages))

    assert report.events == len(events) and [d.reason.value for d in report.dead_letters] == ["undecodable"]
    assert scalar(engine, "SELECT count(*) FROM glucose_readings WHERE user_id = :u", u=user) == 18
    assert scalar(engine, "SELECT energy_kcal FROM daily_totals WHERE user_id = :u", u=user) == 650.0
    assert scalar(engine, "SELECT steps FROM daily_totals WHERE user_id = :u", u=user) == 4000
    assert scalar(engine, "SELECT glucose_readings + bp_readings FROM daily_totals WHERE user_id = :u", u=user) == 19
    assert scalar(engine, "SELECT count(*) FROM glucose_metrics WHERE user_id = :u", u=user) == 2
    assert scalar(engine, "SELECT tier FROM risk_tiers WHERE user_id = :u", u=user) == "urgent"
    assert scalar(engine, "SELECT value FROM user_metrics_current WHERE user_id = :u AND metric = 'risk_tier_rank'",
                  u=user) == 3.0
    kinds = sorted(m.value.split(b'"kind":"')[1].split(b'"')[0].decode() for m in publisher.on(TOPICS.alerts)
                   if m.value)
    assert kinds == ["hypertensive_crisis", "level2_hypoglycaemia"]
    assert len(publisher.on(TOPICS.risk_tiers)) == 1 and len(publisher.on(TOPICS.dead_letter)) == 1
    assert metrics.events.labels("glucose", "stored")._value.get() == 18


def test_replaying_a_batch_changes_no_row_and_publishes_nothing_new(sink: Sink, engine: Engine,
                                                                   publisher: RecordingPublisher,
                                                                   metrics: StreamsMetrics) -> None:
    user = "proc-b"
    messages = as_messages([*cgm_trace(user, T0, [100.0] * 12), meal(user, T0, kcal=400.0)])
    processor = make_processor(sink, publisher, metrics)
    asyncio.run(processor.process_events(messages))
    published = list(publisher.sent)
    totals = scalar(engine, "SELECT (meals, energy_kcal, glucose_readings)::text FROM daily_totals WHERE user_id = :u",
                    u=user)
    asyncio.run(processor.process_events(messages))
    assert publisher.sent == published
    assert scalar(engine, "SELECT (meals, energy_kcal, glucose_readings)::text FROM daily_totals WHERE user_id = :u",
                  u=user) == totals == "(1,400,12)"
    assert metrics.events.labels("glucose", "duplicate")._value.get() == 12


def test_a_crash_before_publishing_replays_to_the_same_ids(sink: Sink, engine: Engine,
                                                           publisher: RecordingPublisher,
                                                           metrics: StreamsMetrics) -> None:
    user = "proc-c"
    messages = as_messages([bp(user, T0, 200, 110)])
    glucose, vitals = MemoryStore(), MemoryStore()
    stores = Stores(glucose, vitals, MemoryStore())
    publisher.fail_next = True
    with pytest.raises(ConnectionError):
        asyncio.run(make_processor(sink, publisher, metrics, stores).process_events(messages))
    assert scalar(engine, "SELECT count(*) FROM blood_pressure_readings WHERE user_id = :u", u=user) == 1
    assert vitals.data == {}  # nothing remembered: the batch was not acked and will be replayed
    # The restarted worker (new processor, same stores) replays the batch.
    asyncio.run(make_processor(sink, publisher, metrics, stores).process_events(messages))
    first_ids = sorted(m.value for m in publisher.sent if m.value)
    publisher.sent.clear()
    vitals.data.clear()  # as if the state write had also been lost
    asyncio.run(make_processor(sink, publisher, metrics, stores).process_events(messages))
    assert sorted(m.value.split(b'"produced_at"')[0] for m in publisher.sent if m.value) == \
        sorted(v.split(b'"produced_at"')[0] for v in first_ids)
    assert scalar(engine, "SELECT count(*) FROM risk_tiers WHERE user_id = :u", u=user) == 1


def test_transient_database_errors_are_retried(sink: Sink, engine: Engine, publisher: RecordingPublisher,
                                               metrics: StreamsMetrics, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("streams.processor._RETRY_FIRST_S", 0.01)
    flaky = FlakySink(sink, 2, OperationalError("INSERT", {}, Exception("server closed the connection")))
    asyncio.run(make_processor(flaky, publisher, metrics).process_events(as_messages([meal("proc-d", T0)])))
    assert metrics.db_retries._value.get() == 2
    assert scalar(engine, "SELECT meals FROM daily_totals WHERE user_id = 'proc-d'") == 1


def test_other_database_errors_fail_the_batch(sink: Sink, publisher: RecordingPublisher,
                                              metrics: StreamsMetrics) -> None:
    broken = FlakySink(sink, 1, ValueError("a bug"))
    with pytest.raises(FatalBatchError, match="a bug"):
        asyncio.run(make_processor(broken, publisher, metrics).process_events(as_messages([meal("proc-e", T0)])))
    assert publisher.sent == []


def test_the_window_is_rebuilt_from_the_stores_after_a_restart(sink: Sink, engine: Engine,
                                                               publisher: RecordingPublisher,
                                                               metrics: StreamsMetrics) -> None:
    user = "proc-f"
    trace = cgm_trace(user, T0, [float(80 + i) for i in range(40)])
    glucose = MemoryStore()
    stores = Stores(glucose, MemoryStore(), MemoryStore())
    asyncio.run(make_processor(sink, publisher, metrics, stores).process_events(as_messages(trace[:30])))
    restarted = make_processor(sink, publisher, metrics, stores)
    asyncio.run(restarted.process_events(as_messages(trace[30:])))
    assert scalar(engine, "SELECT readings FROM glucose_metrics WHERE user_id = :u AND \"window\" = '14d' "
                          "ORDER BY as_of DESC LIMIT 1", u=user) == 40
    assert scalar(engine, "SELECT mean_mg_dl FROM glucose_metrics WHERE user_id = :u AND \"window\" = '14d' "
                          "ORDER BY as_of DESC LIMIT 1", u=user) == pytest.approx(99.5)
    assert all(key.startswith(f"{user}|") for _, key, _ in glucose.changelog)


def test_profiles_set_the_time_zone_of_daily_totals(sink: Sink, engine: Engine, publisher: RecordingPublisher,
                                                    metrics: StreamsMetrics) -> None:
    user = "proc-seoul"
    processor = make_processor(sink, publisher, metrics)
    profile = (b'{"user_id": "proc-seoul", "time_zone": "Asia/Seoul", "bp_guideline": null, '
               b'"updated_at": "2024-01-01T00:00:00Z"}')
    report = asyncio.run(processor.process_profiles(
        [InMessage(TOPICS.profiles.name, 0, 1, user.encode(), profile, 0.0),
         InMessage(TOPICS.profiles.name, 0, 2, b"x", b"{}", 0.0)]))
    assert report.events == 1 and [d.reason.value for d in report.dead_letters] == ["schema_invalid"]
    # 2024-06-01 14:30Z is 23:30 in Seoul; 15:30Z is 00:30 the next day.
    late, early = T0.replace(hour=14, minute=30), T0.replace(hour=15, minute=30)
    asyncio.run(processor.process_events(as_messages([meal(user, late, kcal=300.0), meal(user, early, kcal=700.0)])))
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT day, time_zone, energy_kcal FROM daily_totals WHERE user_id = :u "
                                       "ORDER BY day"), {"u": user}).all()
    assert [tuple(r) for r in rows] == [(date(2024, 6, 1), "Asia/Seoul", 300.0),
                                        (date(2024, 6, 2), "Asia/Seoul", 700.0)]


def test_a_small_window_cache_gives_the_same_results(sink: Sink, engine: Engine, publisher: RecordingPublisher,
                                                     metrics: StreamsMetrics) -> None:
    stores = Stores(MemoryStore(), MemoryStore(), MemoryStore())
    processor = BatchProcessor(stores=stores, sink=sink, publisher=publisher, topics=TOPICS, metrics=metrics,
                               default_guideline=BpGuideline.ACC_AHA_2017, max_cached_windows=1)
    traces = {user: cgm_trace(user, T0, [float(100 + i % 7) for i in range(24)]) for user in ("lru-a", "lru-b")}
    for half in (slice(0, 12), slice(12, 24)):
        for trace in traces.values():  # alternate users, so each batch evicts the other user's window
            asyncio.run(processor.process_events(as_messages(trace[half])))
    for user in traces:
        assert scalar(engine, "SELECT readings FROM glucose_metrics WHERE user_id = :u AND \"window\" = '14d' "
                              "ORDER BY as_of DESC LIMIT 1", u=user) == 24
