"""Contracts the stream worker publishes (risk-tier changes, alerts) and the user profile it reads.

Derived events carry deterministic ids: uuid5 of what triggered them, so a replay after a crash publishes
the same id again and a consumer can drop the duplicate. Profiles travel on a compacted topic keyed by
user id: the newest profile per user is the state, a null value (tombstone) deletes it.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from typing import Literal
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.events import SCHEMA_VERSION, IdStr
from schemas.timestamps import Timestamp

#: Namespace of derived event ids: uuid5(namespace, "<kind>|<what triggered it>").
DERIVED_NAMESPACE = UUID("8f3c2d71-4b6a-4e0f-9d2c-5a1b7e6f3c90")


def derived_event_id(kind: str, trigger: str) -> UUID:
    """The id of a derived event: the same trigger always gives the same id."""
    return uuid5(DERIVED_NAMESPACE, f"{kind}|{trigger}")


class BpGuideline(StrEnum):
    """Blood-pressure classification table a user (or the deployment) chooses."""

    ACC_AHA_2017 = "acc_aha_2017"
    ESC_ESH_2018 = "esc_esh_2018"
    KSH_2018 = "ksh_2018"


class UserProfile(BaseModel):
    """What the stream worker needs to know about a user: their time zone and BP guideline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    user_id: IdStr
    time_zone: str = Field(default="UTC", description="IANA zone name, e.g. America/New_York; days are local.")
    bp_guideline: BpGuideline | None = Field(
        default=None, description="None: the deployment's default (VITALSTREAM_BP_GUIDELINE)."
    )
    updated_at: Timestamp
    schema_version: Literal[1] = SCHEMA_VERSION

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, time_zone: str) -> str:
        # ZoneInfo also accepts file paths such as "../etc/x"; only names from the IANA database count.
        if time_zone not in _zone_names():
            raise ValueError(f"time_zone {time_zone!r} is not an IANA time zone name (e.g. Europe/Berlin)")
        try:
            ZoneInfo(time_zone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"time_zone {time_zone!r} cannot be loaded: {error}") from error
        return time_zone


@cache
def _zone_names() -> frozenset[str]:
    # Reading the zone database takes ~0.1 s; once per process is enough.
    return frozenset(available_timezones() | {"UTC"})


class RiskTier(StrEnum):
    LOW = "low"
    MODERATE = "moderate"
    HIGH = "high"
    URGENT = "urgent"


class TierReason(BaseModel):
    """One rule that fired: a stable code, the tier it sets, a short text and the rule's source."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str
    tier: RiskTier
    text: str
    source: str


class DerivedEvent(BaseModel):
    """Envelope of what the worker publishes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: UUID = Field(description="Deterministic: a replay publishes the same id.")
    user_id: IdStr
    trigger_event_id: UUID = Field(description="The reading (or other event) that triggered this.")
    occurred_at: Timestamp = Field(description="Event time of the trigger.")
    produced_at: Timestamp = Field(description="When the worker produced it (differs between replays).")
    schema_version: Literal[1] = SCHEMA_VERSION


class RiskTierChanged(DerivedEvent):
    """A user's overall risk tier, or the set of reasons behind it, changed."""

    type: Literal["risk_tier_changed"] = "risk_tier_changed"
    tier: RiskTier
    previous_tier: RiskTier | None = Field(description="None for a user's first assessment.")
    reasons: list[TierReason]
    bp_guideline: BpGuideline


class AlertKind(StrEnum):
    LEVEL2_HYPOGLYCAEMIA = "level2_hypoglycaemia"
    HYPERTENSIVE_CRISIS = "hypertensive_crisis"
    PROLONGED_HYPERGLYCAEMIA = "prolonged_hyperglycaemia"


class AlertSeverity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


class Alert(DerivedEvent):
    """Something that needs attention now; `values` holds the numbers behind it, with units in their names."""

    type: Literal["alert"] = "alert"
    kind: AlertKind
    severity: AlertSeverity
    message: str = Field(min_length=1, max_length=500)
    values: dict[str, float]


DERIVED_CONTRACTS: tuple[type[BaseModel], ...] = (UserProfile, RiskTierChanged, Alert)
