"""The Faust app of the stream worker: topics, state tables, agents, and the adapters the processor uses.

- Source topics are raw bytes (the processor decodes and dead-letters); they are created by
  `vitalstream worker streams` before Faust starts, with the registry's partition counts.
- Tables live in memory and are restored from their compacted changelog topics on start and rebalance.
  Their keys are the user id or "user|hour"; every write goes to the changelog partition of the message that
  caused it, which is the user's partition number, so a user's state moves with the user's partitions.
- Processing guarantee: at least once (Kafka 2.3 lacks KIP-447, so Faust's exactly-once cannot span a
  rebalance safely). State and rows are idempotent, so a replay changes nothing. The app runs on a patched
  Faust transport and recovery (streams/transport.py) that re-read instead of skipping after a rebalance.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import faust
from faust.types import AgentT, TableT

from schemas.topics import (
    ALERTS,
    DEAD_LETTER,
    MEAL_ANALYSES,
    MEALS,
    READINGS,
    RISK_TIERS,
    USER_PARTITIONS,
    USER_PROFILES,
    Topic,
)
from streams import transport
from streams.agents import OnFatal, define_agents, exit_process
from streams.messages import OutMessage
from streams.metrics import BpGuideline
from streams.processor import BatchProcessor, BatchSink, Publisher, Stores, TopicNames
from streams.telemetry import StreamsMetrics
from vitalstream.config import Settings

#: Topics of the registry the worker reads or writes.
WORKER_TOPICS: tuple[Topic, ...] = (READINGS, MEALS, MEAL_ANALYSES, USER_PROFILES, DEAD_LETTER, ALERTS, RISK_TIERS)


def prefixed(topic: Topic, prefix: str) -> Topic:
    return replace(topic, name=f"{prefix}{topic.name}") if prefix else topic


def topic_names(prefix: str) -> TopicNames:
    return TopicNames(
        readings=prefixed(READINGS, prefix),
        meals=prefixed(MEALS, prefix),
        meal_analyses=prefixed(MEAL_ANALYSES, prefix),
        profiles=prefixed(USER_PROFILES, prefix),
        dead_letter=prefixed(DEAD_LETTER, prefix).name,
        alerts=prefixed(ALERTS, prefix).name,
        risk_tiers=prefixed(RISK_TIERS, prefix).name,
    )


def broker_urls(bootstrap_servers: str) -> list[str]:
    return [f"kafka://{server.strip()}" for server in bootstrap_servers.split(",") if server.strip()]


class FaustTableStore:
    """A Faust table as a StateStore: writes go to the changelog partition the caller names.

    Table.__setitem__ takes the partition from the "current event", a context variable that batch agents
    (take/noack_take) do not set in the agent's task; naming the partition explicitly is what
    ManagedUserDict would do with it.
    """

    def __init__(self, table: TableT[Any, Any]) -> None:
        self._table = table

    def get(self, key: str) -> Any:
        return self._table.data.get(key)

    def put(self, partition: int, key: str, value: Any) -> None:
        self._table.data[key] = value
        self._table.send_changelog(partition, key, value)

    def delete(self, partition: int, key: str) -> None:
        if key in self._table.data:
            del self._table.data[key]
        self._table.send_changelog(partition, key, None, value_serializer="raw")


class FaustPublisher:
    """Publishes through the app's producer and waits for every delivery."""

    def __init__(self, app: faust.App) -> None:
        self._app = app
        self._topics: dict[str, Any] = {}

    async def publish(self, messages: Sequence[OutMessage]) -> None:
        pending = []
        for message in messages:
            topic = self._topics.get(message.topic)
            if topic is None:
                topic = self._topics[message.topic] = self._app.topic(
                    message.topic, key_serializer="raw", value_serializer="raw")
            pending.append(await topic.send(key=message.key, value=message.value, headers=message.headers))
        for delivery in pending:
            await delivery


@dataclass
class StreamsApp:
    app: faust.App
    processor: BatchProcessor
    events_agent: AgentT[Any]
    profiles_agent: AgentT[Any]
    topics: TopicNames
    tables: dict[str, TableT[Any, Any]]


def create_app(settings: Settings, *, sink: BatchSink, metrics: StreamsMetrics, replication_factor: int = 1,
               publisher: Publisher | None = None, on_fatal: OnFatal = exit_process) -> StreamsApp:
    """The worker's app. Tests pass their own publisher and on_fatal (and drive agents with test_context)."""
    topics = topic_names(settings.streams_topic_prefix)
    app = transport.App(
        settings.streams_app_id,
        broker=broker_urls(settings.kafka),
        store="memory://",
        # Faust's default datadir is "<id>-data" in the working directory; tables live in memory, so it stays empty.
        datadir=Path(tempfile.gettempdir()) / "vitalstream-faust" / settings.streams_app_id,
        topic_partitions=USER_PARTITIONS,
        topic_replication_factor=replication_factor,
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        producer_acks=-1,
        web_enabled=False,
        autodiscover=False,
        consumer_group_instance_id=settings.streams_instance_id,
    )
    tables = {
        # Keys and values are JSON (Faust's choice for key_type=str and no value_type).
        name: app.Table(name, partitions=USER_PARTITIONS, key_type=str)
        for name in ("glucose-buckets", "vitals", "profiles")
    }
    processor = BatchProcessor(
        stores=Stores(glucose=FaustTableStore(tables["glucose-buckets"]), vitals=FaustTableStore(tables["vitals"]),
                      profiles=FaustTableStore(tables["profiles"])),
        sink=sink,
        publisher=publisher or FaustPublisher(app),
        topics=topics,
        metrics=metrics,
        default_guideline=BpGuideline(settings.bp_guideline),
    )
    # One agent for a user's readings, meals and meal analyses: the topics are co-partitioned by user, so the
    # worker that owns a user's meals also owns their analyses and recomputes the same days.
    events = app.topic(topics.readings.name, topics.meals.name, topics.meal_analyses.name,
                       partitions=USER_PARTITIONS, key_serializer="raw", value_serializer="raw")
    profiles = app.topic(topics.profiles.name, partitions=USER_PARTITIONS, key_serializer="raw",
                         value_serializer="raw")
    events_agent, profiles_agent = define_agents(
        app, events=events, profiles=profiles, processor=processor, batch_size=settings.streams_batch_size,
        batch_wait_s=settings.streams_batch_wait_ms / 1000, on_fatal=on_fatal)

    sources = {topics.readings.name, topics.meals.name, topics.meal_analyses.name, topics.profiles.name}

    # Faust calls receivers as (sender, partitions, signal=...).
    async def on_revoked(*args: Any, **kwargs: Any) -> None:
        # After a rebalance another worker may have changed a user's buckets: the cache must be rebuilt.
        processor.forget_cached_windows()

    async def on_assigned(*args: Any, **kwargs: Any) -> None:
        processor.forget_cached_windows()
        assigned = args[1] if len(args) > 1 else ()
        metrics.assigned_partitions.set(sum(1 for tp in assigned if tp.topic in sources))

    app.on_partitions_revoked.connect(on_revoked)
    app.on_partitions_assigned.connect(on_assigned)
    return StreamsApp(app=app, processor=processor, events_agent=events_agent, profiles_agent=profiles_agent,
                      topics=topics, tables=tables)
