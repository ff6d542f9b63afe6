"""Kafka administration: create the registry's topics, idempotently."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from schemas.topics import TOPICS, Topic

log = logging.getLogger(__name__)
MAX_REPLICATION_FACTOR = 3


class TopicMismatchError(RuntimeError):
    """A topic exists with a partition count other than the registry's."""


@dataclass(frozen=True)
class TopicOutcome:
    name: str
    partitions: int
    outcome: Literal["created", "exists"]


def admin_client(bootstrap_servers: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap_servers})


def create_topics(admin: AdminClient, topics: Iterable[Topic] = TOPICS.values(),
                  timeout_s: float = 30.0) -> list[TopicOutcome]:
    """Create each missing topic with the registry's partitions and config; check existing ones.

    An existing topic with another partition count is an error, never changed here: adding partitions
    would move users to other partitions and split their state.
    """
    metadata = admin.list_topics(timeout=timeout_s)
    replication = min(MAX_REPLICATION_FACTOR, len(metadata.brokers))
    wanted = list(topics)
    outcomes: list[TopicOutcome] = []
    missing: list[Topic] = []
    for topic in wanted:
        existing = metadata.topics.get(topic.name)
        if existing is None or existing.error is not None:
            missing.append(topic)
            continue
        if len(existing.partitions) != topic.partitions:
            raise TopicMismatchError(
                f"topic {topic.name} has {len(existing.partitions)} partitions, the registry says "
                f"{topic.partitions}; refusing to change it (keys would move between partitions)"
            )
        outcomes.append(TopicOutcome(topic.name, topic.partitions, "exists"))
    if missing:
        futures = admin.create_topics(
            [NewTopic(t.name, num_partitions=t.partitions, replication_factor=replication, config=t.config())
             for t in missing],
            operation_timeout=timeout_s,
        )
        for topic in missing:
            try:
                futures[topic.name].result(timeout=timeout_s)
                outcome: Literal["created", "exists"] = "created"
            except KafkaException as exc:
                # Another process may have created it between our listing and our request.
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
                outcome = "exists"
            log.info("topic %s", outcome, extra={"topic": topic.name, "partitions": topic.partitions})
            outcomes.append(TopicOutcome(topic.name, topic.partitions, outcome))
    return outcomes
