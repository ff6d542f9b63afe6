"""Prometheus metrics of the Kafka producer client: events sent and the time Kafka took to acknowledge them.

Names are a public API (dashboards and alerts use them); labels are the topic and the outcome, never a user.
A process that serves its own registry (the API) passes `ProducerMetrics.create(registry)` to EventProducer;
everything else shares `default_metrics()`, on prometheus_client's default registry.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

PREFIX = "vitalstream_producer"
#: linger.ms (20 ms by default) is the floor; the top buckets catch a broker outage being retried.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Outcome(StrEnum):
    DELIVERED = "delivered"  # acknowledged by the broker
    FAILED = "failed"  # librdkafka gave up on it (delivery report with an error)
    REJECTED = "rejected"  # produce() refused it: too large, unknown topic, local queue full too long


@dataclass(frozen=True)
class ProducerMetrics:
    events: Counter
    produce_latency_seconds: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = PREFIX) -> ProducerMetrics:
        """All metrics, registered in `registry` (tests pass a fresh CollectorRegistry)."""
        return cls(
            events=Counter(f"{prefix}_events", "Events given to the producer, by topic and outcome (delivered, "
                           "failed: the broker never acknowledged it, rejected: refused before sending).",
                           ["topic", "outcome"], registry=registry),
            produce_latency_seconds=Histogram(
                f"{prefix}_produce_latency_seconds",
                "From produce() to the broker's acknowledgement of a delivered event (batching included), by topic.",
                ["topic"], buckets=LATENCY_BUCKETS_S, registry=registry),
        )

    def delivered(self, topic: str, latency_s: float | None) -> None:
        self.events.labels(topic, Outcome.DELIVERED.value).inc()
        # librdkafka reports no latency for some messages (e.g. when its clock source is unavailable).
        if latency_s is not None:
            self.produce_latency_seconds.labels(topic).observe(latency_s)

    def failed(self, topic: str) -> None:
        self.events.labels(topic, Outcome.FAILED.value).inc()

    def rejected(self, topic: str) -> None:
        self.events.labels(topic, Outcome.REJECTED.value).inc()


@cache
def default_metrics() -> ProducerMetrics:
    """The process-wide producer metrics on the default registry, made on first use (registering twice fails)."""
    return ProducerMetrics.create(REGISTRY)
