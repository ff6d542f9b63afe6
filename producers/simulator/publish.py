"""The sending shell around the generator: photos into the object store, events to Kafka, in simulated time."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from producers.client import EventProducer
from producers.simulator.user import SimulatedEvent
from schemas.events import MealLogged
from schemas.topics import Topic
from vitalstream.object_store import ObjectStore

#: While waiting for simulated time, serve delivery reports at least this often (seconds).
_MAX_WAIT_SLICE_S = 0.5


class SimulatedClock:
    """Simulated time: `start` when made, then `speed` simulated seconds per real second."""

    def __init__(self, start: datetime, speed: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0 simulated seconds per second, got {speed}")
        self.start, self.speed = start, speed
        self._monotonic = monotonic
        self._origin = monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(self._monotonic() - self._origin) * self.speed)

    def real_seconds_until(self, at: datetime) -> float:
        return (at - self.now()).total_seconds() / self.speed


@dataclass
class PublishCounts:
    by_type: Counter[str] = field(default_factory=Counter)
    users: set[str] = field(default_factory=set)
    photos: int = 0

    @property
    def events(self) -> int:
        return sum(self.by_type.values())


def publish(events: Iterable[SimulatedEvent], producer: EventProducer, store: ObjectStore, *,
            clock: SimulatedClock | None = None, routes: Mapping[str, Topic] | None = None,
            on_sent: Callable[[SimulatedEvent], None] | None = None) -> PublishCounts:
    """Send each event when the clock reaches its received_at (at once without a clock); flush at the end.

    A meal's photo is stored before its event is sent, so a consumer never sees a reference to a missing object.
    `routes` maps registry topic names to other topics (tests use private topics with the same contract).
    """
    counts = PublishCounts()
    for item in events:
        if clock is not None:
            while (wait_s := clock.real_seconds_until(item.event.received_at)) > 0:
                producer.poll(min(wait_s, _MAX_WAIT_SLICE_S))
        if item.photo is not None and isinstance(item.event, MealLogged) and item.event.photo is not None:
            store.put(item.event.photo.object_key, item.photo)
            counts.photos += 1
        topic = item.topic if routes is None else routes.get(item.topic.name, item.topic)
        producer.send(topic, item.event)
        counts.by_type[str(getattr(item.event, "type", ""))] += 1
        counts.users.add(item.event.user_id)
        if on_sent is not None:
            on_sent(item)
    producer.flush()
    return counts
