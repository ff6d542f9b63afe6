"""Consumer lag of Kafka consumer groups, read from the broker at scrape time (a prometheus_client Collector).

Lag is the partition's end offset (high watermark) minus the group's committed offset: what the group would
still have to read if it restarted now. It is computed from the broker's view, so it is right even while the
group's members are stuck or down, which a consumer's own statistics cannot be.

Series: vitalstream_consumer_lag_messages{group, topic, partition}: partitions are bounded by the topic
registry, groups by configuration; nothing user-specific. Plus vitalstream_consumer_lag_available{group}:
1 when the group's figures were read at this scrape, 0 when the broker did not answer in time.

Register it in the process that serves /metrics:

    register_lag_collector(registry, settings.kafka, [settings.streams_app_id])

With several replicas of a worker each exports the same group's lag; aggregate with max by (group, topic,
partition) before summing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

LAG_METRIC = "vitalstream_consumer_lag_messages"
AVAILABLE_METRIC = "vitalstream_consumer_lag_available"
#: Well under Prometheus' default scrape timeout (10 s): two requests per group are made at each scrape.
DEFAULT_TIMEOUT_S = 3.0

#: (topic, partition)
Partition = tuple[str, int]


@dataclass(frozen=True)
class GroupOffsets:
    """What the broker said about one group: committed offsets, and whether it answered at all."""

    group: str
    committed: Mapping[Partition, int]
    available: bool


def lag_families(groups: Iterable[GroupOffsets], end_offsets: Mapping[Partition, int]) -> list[Metric]:
    """The metric families for committed offsets and end offsets already read from the broker.

    A partition the group never committed has no lag series (Kafka keeps no position for it; the group's
    auto.offset.reset decides where it would start). A committed offset past the end (a topic recreated)
    counts as no lag rather than a negative one.
    """
    lag = GaugeMetricFamily(LAG_METRIC, "Messages between a consumer group's committed offset and the end of a "
                            "partition (high watermark), read from the broker at scrape time.",
                            labels=["group", "topic", "partition"])
    available = GaugeMetricFamily(AVAILABLE_METRIC, "1 when the group's committed offsets and the partitions' "
                                  "end offsets were read at this scrape, else 0.", labels=["group"])
    for offsets in groups:
        available.add_metric([offsets.group], 1.0 if offsets.available else 0.0)
        for (topic, partition), committed in sorted(offsets.committed.items()):
            end = end_offsets.get((topic, partition))
            if committed < 0 or end is None:
                continue
            lag.add_metric([offsets.group, topic, str(partition)], float(max(end - committed, 0)))
    return [lag, available]


class ConsumerLagCollector(Collector):
    """Reads the groups' committed offsets and the end offsets of their partitions at every collect()."""

    def __init__(self, bootstrap_servers: str, groups: Sequence[str], timeout_s: float = DEFAULT_TIMEOUT_S,
                 client_config: Mapping[str, str | int | float | bool] | None = None) -> None:
        if not groups:
            raise ValueError("groups: name at least one consumer group")
        self._config: dict[str, str | int | float | bool] = {"bootstrap.servers": bootstrap_servers,
                                                             **(client_config or {})}
        self._groups = list(groups)
        self._timeout_s = timeout_s
        self._admin: AdminClient | None = None
        # prometheus_client serves scrapes from several threads; one client is made, once.
        self._lock = threading.Lock()

    def _client(self) -> AdminClient:
        with self._lock:
            if self._admin is None:
                self._admin = AdminClient(self._config)
            return self._admin

    def describe(self) -> Iterator[Metric]:
        # Names for the registry's duplicate check, without the network round trip collect() would make.
        yield from lag_families([], {})

    def collect(self) -> Iterator[Metric]:
        admin = self._client()
        groups = [self._committed(admin, group) for group in self._groups]
        wanted = {partition for offsets in groups for partition in offsets.committed}
        ends = self._end_offsets(admin, wanted)
        if ends is None:
            groups = [GroupOffsets(g.group, {}, available=g.available and not g.committed) for g in groups]
            ends = {}
        yield from lag_families(groups, ends)

    def _committed(self, admin: AdminClient, group: str) -> GroupOffsets:
        try:
            future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)],
                                                       request_timeout=self._timeout_s)[group]
            result = future.result(timeout=self._timeout_s)
        except (KafkaException, TimeoutError) as error:
            log.warning("committed offsets of a consumer group could not be read",
                        extra={"group": group, "error": str(error)})
            return GroupOffsets(group, {}, available=False)
        committed = {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions or []
                     if tp.error is None}
        return GroupOffsets(group, committed, available=True)

    def _end_offsets(self, admin: AdminClient, partitions: set[Partition]) -> dict[Partition, int] | None:
        """End offsets by partition; None when the broker answered none of them."""
        if not partitions:
            return {}
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]  # confluent_kafka leaves it unannotated
        request = {TopicPartition(topic, partition): latest for topic, partition in partitions}
        ends: dict[Partition, int] = {}
        last_error: Exception | None = None
        for tp, future in admin.list_offsets(request, request_timeout=self._timeout_s).items():
            try:
                ends[tp.topic, tp.partition] = future.result(timeout=self._timeout_s).offset
            except (KafkaException, TimeoutError) as error:
                # E.g. a deleted topic the group still has commits for: that partition's lag is left out.
                last_error = error
                log.debug("end offset of a partition could not be read",
                          extra={"topic": tp.topic, "partition": tp.partition, "error": str(error)})
        if not ends and last_error is not None:
            log.warning("end offsets could not be read", extra={"error": str(last_error)})
            return None
        return ends


def register_lag_collector(registry: CollectorRegistry, bootstrap: str, groups: Sequence[str],
                           timeout_s: float = DEFAULT_TIMEOUT_S) -> ConsumerLagCollector:
    """Export the consumer lag of `groups` from `registry`; returns the collector (to unregister it)."""
    collector = ConsumerLagCollector(bootstrap, groups, timeout_s=timeout_s)
    registry.register(collector)
    return collector
