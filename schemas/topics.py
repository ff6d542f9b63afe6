"""The topic registry: every topic's name, partitions, retention, clean-up policy and payload.

Every user-keyed topic has the same partition count, so a user's readings, meals and meal analyses land on the
same partition number and one stream worker owns all of that user's state (co-partitioning).
Producers must hash keys as the Java client does (murmur2), which is what Faust and Kafka Streams expect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import TypeAdapter

from schemas.derived import Alert, RiskTierChanged, UserProfile
from schemas.events import MealLogged, Reading
from schemas.meal_analysis import MealAnalyzed

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

USER_PROFILES = Topic(
    name="vitalstream.user-profiles",
    partitions=USER_PARTITIONS,
    # Compacted: the newest profile per user is kept for good; retention.ms does not apply to compaction.
    retention_ms=3650 * DAY_MS,
    cleanup_policy="compact",
    payload=TypeAdapter(UserProfile),
    description="Each user's time zone and blood-pressure guideline; the newest per user wins, null deletes.",
)
RISK_TIERS = Topic(
    name="vitalstream.risk-tiers",
    partitions=USER_PARTITIONS,
    retention_ms=30 * DAY_MS,
    cleanup_policy="delete",
    payload=TypeAdapter(RiskTierChanged),
    description="A user's risk tier (or its reasons) changed; ids are deterministic, so replays repeat ids.",
)
ALERTS = Topic(
    name="vitalstream.alerts",
    partitions=USER_PARTITIONS,
    retention_ms=30 * DAY_MS,
    cleanup_policy="delete",
    payload=TypeAdapter(Alert),
    description="Level 2 hypoglycaemia, hypertensive crisis, prolonged hyperglycaemia; ids are deterministic.",
)

MEAL_ANALYSES = Topic(
    name="vitalstream.meal-analyses",
    partitions=USER_PARTITIONS,
    retention_ms=30 * DAY_MS,
    cleanup_policy="delete",
    payload=TypeAdapter(MealAnalyzed),
    description="What the inference consumer saw on a meal photo; ids are deterministic, so re-analyses repeat ids.",
)

TOPICS: dict[str, Topic] = {t.name: t for t in (READINGS, MEALS, DEAD_LETTER, USER_PROFILES, RISK_TIERS, ALERTS,
                                                 MEAL_ANALYSES)}
