"""The inference consumer's Prometheus metrics, declared together; names are a public API, labels never name users.

Consumer lag exists only in librdkafka's statistics (every few seconds), so a custom collector serves the
latest figures at scrape time instead of a gauge the loop would have to keep setting.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

_BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 12, 16, 24, 32, 64, 128)
_TRITON_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LATENCY_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class ConsumerLag(Collector):
    """Messages behind the end of each partition, counted from the group's committed offset."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._lag: dict[tuple[str, int], int] = {}

    def update_from_statistics(self, statistics_json: str) -> None:
        """Take the lag figures of a librdkafka statistics document (consumer `stats_cb`)."""
        statistics = json.loads(statistics_json)
        lag: dict[tuple[str, int], int] = {}
        for topic, topic_stats in statistics.get("topics", {}).items():
            for number, partition in topic_stats.get("partitions", {}).items():
                # Partition -1 is librdkafka's "unassigned" placeholder; lag -1 means not known yet.
                if int(number) >= 0 and partition.get("consumer_lag", -1) >= 0:
                    lag[topic, int(number)] = int(partition["consumer_lag"])
        with self._lock:
            self._lag = lag

    def forget(self) -> None:
        with self._lock:
            self._lag = {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(self._name, "Messages between the committed offset and the end of a partition.",
                                   labels=["topic", "partition"])
        with self._lock:
            for (topic, partition), lag in sorted(self._lag.items()):
                family.add_metric([topic, str(partition)], lag)
        yield family


@dataclass(frozen=True)
class InferenceMetrics:
    messages: Counter
    images: Counter
    batch_size: Histogram
    triton_seconds: Histogram
    latency_seconds: Histogram
    errors: Counter
    paused: Gauge
    lag: ConsumerLag

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = "vitalstream_inference") -> InferenceMetrics:
        """All metrics, registered in `registry` (tests pass a fresh CollectorRegistry)."""
        lag = ConsumerLag(f"{prefix}_consumer_lag")
        registry.register(lag)
        return cls(
            messages=Counter(f"{prefix}_messages", "Meal events handled, by outcome (analysed, no_photo, "
                             "dead_letter).", ["outcome"], registry=registry),
            images=Counter(f"{prefix}_images", "Photos analysed by Triton and published.", registry=registry),
            batch_size=Histogram(f"{prefix}_batch_size", "Photos per Triton request.",
                                 buckets=_BATCH_SIZE_BUCKETS, registry=registry),
            triton_seconds=Histogram(f"{prefix}_triton_seconds", "Time of one successful Triton request (a batch).",
                                     buckets=_TRITON_SECONDS_BUCKETS, registry=registry),
            latency_seconds=Histogram(f"{prefix}_latency_seconds",
                                      "From taking a meal event off Kafka to its analysis being ready.",
                                      buckets=_LATENCY_SECONDS_BUCKETS, registry=registry),
            errors=Counter(f"{prefix}_errors", "Errors by reason: dead-letter reasons, triton_unavailable (each "
                           "failed attempt), commit_failed.", ["reason"], registry=registry),
            paused=Gauge(f"{prefix}_paused", "1 while the consumer holds its partitions paused because Triton "
                         "is unavailable.", registry=registry),
            lag=lag,
        )
