"""Profiles through BatchProcessor.process_profiles into the real TimescaleDB (user_profiles) and the profiles
state table: the database first, then the changelog; a tombstone deletes; a replay of an older profile changes
nothing in the database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from schemas.derived import UserProfile
from storage.sink import BatchWrite, Sink, WriteResult
from streams.messages import InMessage
from streams.processor import FatalBatchError, Stores
from streams.telemetry import StreamsMetrics
from tests.streams.conftest import MemoryStore, RecordingPublisher
from tests.streams.test_processor import TOPICS, make_processor


class FailingProfilesSink:
    """The real sink, whose profile writes fail `failures` times with `error`."""

    def __init__(self, sink: Sink, failures: int, error: Exception) -> None:
        self.sink, self.failures, self.error = sink, failures, error

    def write(self, batch: BatchWrite) -> WriteResult:
        return self.sink.write(batch)

    def write_profiles(self, profiles: Sequence[UserProfile], deleted_user_ids: Sequence[str]) -> None:
        if self.failures:
            self.failures -= 1
            raise self.error
        self.sink.write_profiles(profiles, deleted_user_ids)


@pytest.fixture
def sink(engine: Engine) -> Sink:
    return Sink(engine)


_offset = iter(range(1, 1_000_000))


def profile(user: str, zone: str = "UTC", guideline: str | None = None, updated: str = "2024-01-01") -> InMessage:
    body = {"user_id": user, "time_zone": zone, "bp_guideline": guideline, "updated_at": f"{updated}T00:00:00Z"}
    return InMessage(TOPICS.profiles.name, 3, next(_offset), user.encode(), json.dumps(body).encode(), 0.0)


def tombstone(user: str) -> InMessage:
    return InMessage(TOPICS.profiles.name, 3, next(_offset), user.encode(), None, 0.0)


def stored(engine: Engine, *users: str) -> dict[str, tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT user_id, time_zone, bp_guideline, updated_at FROM user_profiles "
                                       "WHERE user_id = ANY(:u)"), {"u": list(users)}).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_profiles_are_stored_and_a_tombstone_deletes(sink: Sink, engine: Engine, publisher: RecordingPublisher,
                                                     metrics: StreamsMetrics) -> None:
    profiles = MemoryStore()
    processor = make_processor(sink, publisher, metrics, Stores(MemoryStore(), MemoryStore(), profiles))
    report = asyncio.run(processor.process_profiles([
        profile("pr-oslo", "Europe/Oslo", "esc_esh_2018"), profile("pr-lima", "America/Lima"),
        InMessage(TOPICS.profiles.name, 3, next(_offset), b"pr-bad", b'{"user_id": "pr-bad"}', 0.0)]))
    jan = datetime(2024, 1, 1, tzinfo=UTC)
    assert stored(engine, "pr-oslo", "pr-lima", "pr-bad") == {
        "pr-oslo": ("Europe/Oslo", "esc_esh_2018", jan), "pr-lima": ("America/Lima", None, jan)}
    assert [d.reason.value for d in report.dead_letters] == ["schema_invalid"]
    assert profiles.data["pr-oslo"] == {"time_zone": "Europe/Oslo", "bp_guideline": "esc_esh_2018"}

    asyncio.run(processor.process_profiles([tombstone("pr-oslo")]))
    assert stored(engine, "pr-oslo", "pr-lima") == {"pr-lima": ("America/Lima", None, jan)}
    assert "pr-oslo" not in profiles.data and profiles.changelog[-1] == (3, "pr-oslo", None)


def test_the_last_message_of_a_user_in_a_batch_wins(sink: Sink, engine: Engine, publisher: RecordingPublisher,
                                                    metrics: StreamsMetrics) -> None:
    processor = make_processor(sink, publisher, metrics)
    asyncio.run(processor.process_profiles([profile("pr-gone", "Asia/Tokyo"), tombstone("pr-gone"),
                                            tombstone("pr-back"), profile("pr-back", "Asia/Tokyo")]))
    assert stored(engine, "pr-gone", "pr-back") == {"pr-back": ("Asia/Tokyo", None, datetime(2024, 1, 1, tzinfo=UTC))}


def test_a_replayed_older_profile_does_not_replace_a_newer_one(sink: Sink, engine: Engine,
                                                               publisher: RecordingPublisher,
                                                               metrics: StreamsMetrics) -> None:
    processor = make_processor(sink, publisher, metrics)
    older, newer = profile("pr-replay", "Europe/Paris"), profile("pr-replay", "Europe/Rome", updated="2024-03-01")
    asyncio.run(processor.process_profiles([older, newer]))
    asyncio.run(processor.process_profiles([older]))
    assert stored(engine, "pr-replay") == {"pr-replay": ("Europe/Rome", None, datetime(2024, 3, 1, tzinfo=UTC))}


def test_the_database_is_written_before_the_changelog(sink: Sink, engine: Engine, publisher: RecordingPublisher,
                                                      metrics: StreamsMetrics,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    profiles = MemoryStore()
    stores = Stores(MemoryStore(), MemoryStore(), profiles)
    broken = FailingProfilesSink(sink, 1, ValueError("a bug"))
    with pytest.raises(FatalBatchError, match="a bug"):
        asyncio.run(make_processor(broken, publisher, metrics, stores).process_profiles([profile("pr-crash")]))
    # Nothing in the changelog: the batch is not acked and is replayed, and the database gets it then.
    assert profiles.changelog == [] and stored(engine, "pr-crash") == {}

    monkeypatch.setattr("streams.processor._RETRY_FIRST_S", 0.01)
    flaky = FailingProfilesSink(sink, 2, OperationalError("INSERT", {}, Exception("server closed the connection")))
    asyncio.run(make_processor(flaky, publisher, metrics, stores).process_profiles([profile("pr-crash")]))
    assert metrics.db_retries._value.get() == 2
    assert list(stored(engine, "pr-crash")) == ["pr-crash"] and [k for _, k, _ in profiles.changelog] == ["pr-crash"]
