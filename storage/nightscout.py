"""Reads for the Nightscout-compatible API: a user's glucose readings, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from storage.tables import glucose_readings


@dataclass(frozen=True)
class TimeRange:
    """Bounds on occurred_at; each may be absent."""

    gte: datetime | None = None
    gt: datetime | None = None
    lte: datetime | None = None
    lt: datetime | None = None


def glucose_entries(connection: Connection, user_id: str, kinds: Sequence[str], count: int,
                    within: TimeRange = TimeRange()) -> list[Any]:
    """Up to `count` rows of the user's readings of these kinds, newest first (the primary key's order)."""
    c = glucose_readings.c
    query = (select(c.event_id, c.occurred_at, c.device_id, c.glucose_mg_dl, c.kind, c.trend)
             .where(c.user_id == user_id, c.kind.in_(list(kinds))))
    if within.gte is not None:
        query = query.where(c.occurred_at >= within.gte)
    if within.gt is not None:
        query = query.where(c.occurred_at > within.gt)
    if within.lte is not None:
        query = query.where(c.occurred_at <= within.lte)
    if within.lt is not None:
        query = query.where(c.occurred_at < within.lt)
    return list(connection.execute(query.order_by(c.occurred_at.desc()).limit(count)))
