"""The topic registry: every topic's name, partitions, retention, clean-up policy and payload.

Every user-keyed topic has the same partition count, so a user's readings, meals and meal analyses land on the
same partition number and one stream worker owns all of that user's state (co-partitioning).
Producers must hash keys as the Java client does (murmur2), which is what Faust and Kafka Streams expect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import TypeAdapter

from schemas.events import MealLogged, Reading

USER_PARTITIONS = 12
DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class Topic:
    """One Kafka topic. `payload` validates its messages; None means raw bytes (dead letters)."""

    name: str
    partitions: int
    retention_ms: int
    cleanup_policy: Literal["delete", "compact"]
    payload: TypeAdapter[Any] | None
    description: str
    key: str = "user_id"

    def config(self) -> dict[str, str]:
        """Topic-level broker configuration."""
        return {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms)}


READINGS = Topic(
    name="vitalstream.readings",
    partitions=USER_PARTITIONS,
    retention_ms=30 * DAY_MS,
    cleanup_policy="delete",
    payload=TypeAdapter(Reading),
    description="Glucose, blood pressure, HbA1c and exercise events, tagged by `type`.",
)
MEALS = Topic(
    name="vitalstream.meals",
    partitions=USER_PARTITIONS,
    retention_ms=30 * DAY_MS,
    cleanup_policy="delete",
    payload=TypeAdapter(MealLogged),
    description="Meals as logged, with an optional photo reference.",
)
DEAD_LETTER = Topic(
    name="vitalstream.dead-letter",
    partitions=3,
    retention_ms=90 * DAY_MS,
    cleanup_policy="delete",
    payload=None,
    description="Messages a consumer could not process: the original bytes, the reason in headers.",
    key="original key",
)

TOPICS: dict[str, Topic] = {t.name: t for t in (READINGS, MEALS, DEAD_LETTER)}
