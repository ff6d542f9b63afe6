"""All users' events merged in upload order: a pure iterator, no Kafka, no files."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from producers.simulator.user import SimulatedEvent, simulate_user


def default_start(days: float, now: datetime | None = None) -> datetime:
    """`days` before the current hour began: nothing lies in the future, and a re-run within the hour is identical."""
    current = (now or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return current - timedelta(days=days)


def simulate(seed: int, users: int, start: datetime, days: float) -> Iterator[SimulatedEvent]:
    """Events of users 0..users-1 in [start, start + days), ordered by received_at (ties: user, then creation)."""
    if start.tzinfo is None:
        raise ValueError("start: must carry a time zone")
    if users < 0 or days <= 0:
        raise ValueError(f"users must be ≥ 0 and days > 0, got users={users} days={days}")
    end = start + timedelta(days=days)
    streams = [simulate_user(seed, index, start, end) for index in range(users)]
    # heapq.merge breaks ties by stream position, so equal timestamps keep user order, deterministically.
    return heapq.merge(*streams, key=lambda item: item.event.received_at)
