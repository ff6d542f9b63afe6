"""Each user's live-event feed (table user_feed, migration 0005): the stream worker appends, the API streams it.

Rows are alerts, risk-tier changes and meal analyses. The bigserial id is the cursor a client resumes from (the
SSE `id:`); source_event_id is the id of the event a row was made from, UNIQUE, so a replayed event (derived
events have deterministic ids) adds nothing. Appending NOTIFYs channel `user_feed` with the user's id, delivered
when the transaction commits, so API processes wake the right streams at once instead of polling.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol
from uuid import UUID

from sqlalchemy import BigInteger, Column, Connection, Index, String, Table, Text, Uuid, delete, func, select, text
from sqlalchemy.dialects.postgresql import JSONB, insert

from schemas.derived import Alert, RiskTierChanged
from storage.tables import TS, metadata

#: The channel append_feed notifies; the payload is the user id.
FEED_CHANNEL = "user_feed"


class FeedKind(StrEnum):
    """What a feed row is; also the SSE `event:` name."""

    ALERT = "alert"
    RISK_TIER_CHANGED = "risk_tier_changed"
    MEAL_ANALYSIS = "meal_analysis"


user_feed = Table(
    "user_feed", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("user_id", Text, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("occurred_at", TS, nullable=False),
    Column("source_event_id", Uuid, nullable=False, unique=True),
    Column("created_at", TS, nullable=False, server_default=func.now()),
)
Index("ix_user_feed_user_id_id", user_feed.c.user_id, user_feed.c.id)
Index("ix_user_feed_created_at", user_feed.c.created_at)


@dataclass(frozen=True, slots=True)
class FeedRow:
    id: int
    user_id: str
    kind: FeedKind
    payload: dict[str, Any]
    occurred_at: datetime
    source_event_id: UUID


class FeedSource(Protocol):
    """What a feed row is made from: a derived event, or a meal analysis (schemas.meal_analysis.MealAnalyzed)."""

    @property
    def event_id(self) -> UUID: ...

    @property
    def user_id(self) -> str: ...

    @property
    def occurred_at(self) -> datetime: ...

    def model_dump(self, *, mode: str) -> dict[str, Any]: ...


def feed_row(event: FeedSource, kind: FeedKind | None = None) -> dict[str, Any]:
    """The row append_feed takes for an event; `kind` may be left out for alerts and risk-tier changes."""
    if kind is None:
        if not isinstance(event, Alert | RiskTierChanged):
            raise ValueError(f"feed_row: give the kind of a {type(event).__name__}")
        kind = FeedKind.ALERT if isinstance(event, Alert) else FeedKind.RISK_TIER_CHANGED
    return {"user_id": event.user_id, "kind": kind.value, "payload": event.model_dump(mode="json"),
            "occurred_at": event.occurred_at, "source_event_id": event.event_id}


def append_feed(connection: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
    """Append rows (user_id, kind, payload, occurred_at, source_event_id); returns how many were new.

    A row whose source_event_id is stored already is skipped. Rows get ids in event-time order within a call.
    The caller owns the transaction: the NOTIFY goes out when it commits, and not at all if it rolls back.
    """
    if not rows:
        return 0
    for row in rows:
        FeedKind(row["kind"])  # a typo in a kind would hide the row from clients that listen per event name
    ordered = sorted(rows, key=lambda row: row["occurred_at"])
    inserted = connection.execute(
        insert(user_feed).values([{name: row[name] for name in
                                   ("user_id", "kind", "payload", "occurred_at", "source_event_id")}
                                  for row in ordered])
        .on_conflict_do_nothing(index_elements=["source_event_id"])
        .returning(user_feed.c.user_id)
    ).scalars().all()
    users = sorted(set(inserted))
    if users:
        connection.execute(text("SELECT pg_notify(:channel, u) FROM unnest(CAST(:users AS text[])) AS u"),
                           {"channel": FEED_CHANNEL, "users": users})
    return len(inserted)


def feed_after(connection: Connection, user_id: str, after_id: int, limit: int) -> list[FeedRow]:
    """The user's rows with id > after_id, oldest first, at most `limit`."""
    result = connection.execute(
        select(user_feed).where(user_feed.c.user_id == user_id, user_feed.c.id > after_id)
        .order_by(user_feed.c.id).limit(limit))
    return [FeedRow(id=r.id, user_id=r.user_id, kind=FeedKind(r.kind), payload=r.payload, occurred_at=r.occurred_at,
                    source_event_id=r.source_event_id) for r in result]


def newest_feed_id(connection: Connection, user_id: str) -> int:
    """The id of the user's newest row; 0 when there is none."""
    newest: int | None = connection.execute(
        select(func.max(user_feed.c.id)).where(user_feed.c.user_id == user_id)).scalar_one()
    return newest or 0


def purge_feed(connection: Connection, created_before: datetime) -> int:
    """Delete rows stored before `created_before`; returns how many went."""
    return connection.execute(delete(user_feed).where(user_feed.c.created_at < created_before)).rowcount
