"""EventProducer's metrics: delivered events and their latency from a real broker, failures and refusals."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, CollectorRegistry

from producers.client import EventProducer
from producers.config import ProducerConfig
from producers.errors import ProducerError
from producers.metrics import ProducerMetrics, default_metrics
from stack.testing import TopicFactory

EVENTS = "vitalstream_producer_events_total"
LATENCY = "vitalstream_producer_produce_latency_seconds"
#: Nothing listens here: messages can only time out.
NO_BROKER = "127.0.0.1:1"


def test_delivered_events_are_counted_with_their_latency(kafka_bootstrap: str, topic_factory: TopicFactory) -> None:
    topic = topic_factory(partitions=2)
    registry = CollectorRegistry()
    with EventProducer(ProducerConfig(bootstrap_servers=kafka_bootstrap),
                       metrics=ProducerMetrics.create(registry)) as producer:
        for n in range(25):
            producer.produce(topic, f"event {n}".encode(), key=f"user-{n % 5}".encode())

    assert registry.get_sample_value(EVENTS, {"topic": topic, "outcome": "delivered"}) == 25
    assert registry.get_sample_value(f"{LATENCY}_count", {"topic": topic}) == 25
    total_s = registry.get_sample_value(f"{LATENCY}_sum", {"topic": topic})
    # linger.ms is 20 ms: every event waited at least a little, and none anywhere near a minute here.
    assert total_s is not None and 0 < total_s / 25 < 5.0
    assert registry.get_sample_value(EVENTS, {"topic": topic, "outcome": "failed"}) is None


def test_undelivered_events_are_counted_as_failed() -> None:
    registry = CollectorRegistry()
    config = ProducerConfig(bootstrap_servers=NO_BROKER, linger_ms=0, delivery_timeout_ms=300)
    producer = EventProducer(config, metrics=ProducerMetrics.create(registry))
    producer.produce("vitalstream.readings", b"one")
    producer.produce("vitalstream.readings", b"two")
    with pytest.raises(ProducerError, match="2 message"):
        producer.flush(timeout_s=10)
    assert registry.get_sample_value(EVENTS, {"topic": "vitalstream.readings", "outcome": "failed"}) == 2
    # Latency is only observed for delivered events.
    assert registry.get_sample_value(f"{LATENCY}_count", {"topic": "vitalstream.readings"}) is None


def test_events_refused_before_sending_are_counted_as_rejected() -> None:
    registry = CollectorRegistry()
    config = ProducerConfig(bootstrap_servers=NO_BROKER, extra={"message.max.bytes": 1000})
    producer = EventProducer(config, metrics=ProducerMetrics.create(registry))
    with pytest.raises(ProducerError, match="MSG_SIZE_TOO_LARGE"):
        producer.produce("vitalstream.meals", b"x" * 5000)
    assert registry.get_sample_value(EVENTS, {"topic": "vitalstream.meals", "outcome": "rejected"}) == 1


def test_without_metrics_the_default_registry_counts() -> None:
    labels = {"topic": "vitalstream.meals", "outcome": "rejected"}
    before = REGISTRY.get_sample_value(EVENTS, labels) or 0.0
    producer = EventProducer(ProducerConfig(bootstrap_servers=NO_BROKER, extra={"message.max.bytes": 1000}))
    with pytest.raises(ProducerError):
        producer.produce("vitalstream.meals", b"x" * 5000)
    assert REGISTRY.get_sample_value(EVENTS, labels) == before + 1
    # One set per process: a second producer shares it rather than registering the names again.
    assert default_metrics() is default_metrics()
