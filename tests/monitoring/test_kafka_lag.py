"""The consumer-lag collector against a real broker: committed offsets, end offsets, and a broker that is gone."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client import CollectorRegistry
from prometheus_client.samples import Sample

from stack.testing import TopicFactory
from vitalstream.kafka_lag import (
    AVAILABLE_METRIC,
    LAG_METRIC,
    GroupOffsets,
    lag_families,
    register_lag_collector,
)


def _lag_samples(registry: CollectorRegistry) -> list[Sample]:
    return [sample for metric in registry.collect() if metric.name == LAG_METRIC for sample in metric.samples]


def _produce(bootstrap: str, topic: str, per_partition: dict[int, int]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition, count in per_partition.items():
        for n in range(count):
            producer.produce(topic, f"m{n}".encode(), partition=partition)
    assert producer.flush(30) == 0


def _commit(bootstrap: str, group: str, offsets: list[TopicPartition]) -> None:
    # A commit without joining the group: what a consumer that stopped halfway leaves behind.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


def test_lag_is_end_offset_minus_committed_offset_per_partition(kafka_bootstrap: str,
                                                                topic_factory: TopicFactory) -> None:
    topic = topic_factory(partitions=3)
    group, idle_group = f"lag-test-{uuid.uuid4().hex[:8]}", f"lag-idle-{uuid.uuid4().hex[:8]}"
    _produce(kafka_bootstrap, topic, {0: 10, 1: 4, 2: 7})
    # Partition 2 never committed: no lag series for it (the group has no position there).
    _commit(kafka_bootstrap, group, [TopicPartition(topic, 0, 3), TopicPartition(topic, 1, 4)])

    registry = CollectorRegistry()
    register_lag_collector(registry, kafka_bootstrap, [group, idle_group])

    def lag(partition: int) -> float | None:
        return registry.get_sample_value(LAG_METRIC, {"group": group, "topic": topic, "partition": str(partition)})

    assert (lag(0), lag(1), lag(2)) == (7.0, 0.0, None)
    assert registry.get_sample_value(AVAILABLE_METRIC, {"group": group}) == 1.0
    # A group that never committed is readable and has no lag series.
    assert registry.get_sample_value(AVAILABLE_METRIC, {"group": idle_group}) == 1.0
    assert {s.labels["group"] for s in _lag_samples(registry)} == {group}

    # Read again at every scrape: more messages, more lag.
    _produce(kafka_bootstrap, topic, {1: 5})
    assert lag(1) == 5.0


def test_unreachable_broker_reports_unavailable_quickly() -> None:
    registry = CollectorRegistry()
    # Registration must not touch the network (prometheus_client calls describe(), not collect()).
    register_lag_collector(registry, "127.0.0.1:1", ["some-group"], timeout_s=0.5)
    started = time.monotonic()
    assert registry.get_sample_value(AVAILABLE_METRIC, {"group": "some-group"}) == 0.0
    assert time.monotonic() - started < 5.0
    assert _lag_samples(registry) == []


def test_lag_families_never_go_negative_and_skip_unknown_ends() -> None:
    families = lag_families([GroupOffsets("g", {("t", 0): 12, ("t", 1): 3, ("gone", 0): 4}, available=True)],
                            {("t", 0): 10, ("t", 1): 9})
    lag = {s.labels["topic"] + "/" + s.labels["partition"]: s.value for s in families[0].samples}
    assert lag == {"t/0": 0.0, "t/1": 6.0}


def test_at_least_one_group_is_required() -> None:
    with pytest.raises(ValueError, match="groups"):
        register_lag_collector(CollectorRegistry(), "127.0.0.1:1", [])
