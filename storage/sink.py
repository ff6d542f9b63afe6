"""The stream worker's database sink: one transaction per batch, raw rows and meal analyses first, then the
derived rows, then the users' feed rows.

Blocking (SQLAlchemy + psycopg); the worker runs `Sink.write` in a thread. Everything it writes is
idempotent (raw rows, analyses and feed rows ON CONFLICT DO NOTHING, derived rows upserted), so a batch written
twice, e.g. after a crash between the commit and the Kafka offset commit, leaves the same rows.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from schemas.derived import UserProfile
from schemas.events import Event
from schemas.meal_analysis import MealAnalyzed
from storage.derived import (
    DayKey,
    Row,
    upsert_daily_totals,
    upsert_glucose_metrics,
    upsert_risk_tiers,
    upsert_user_metrics,
)
from storage.feed import append_feed
from storage.meal_analyses import insert_meal_analyses
from storage.profiles import delete_profiles, upsert_profiles
from storage.raw import insert_raw

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchWrite:
    """Everything one batch stores."""

    #: Raw events (readings, meals): one row each in their hypertable.
    events: Sequence[Event]
    meal_analyses: Sequence[MealAnalyzed] = ()
    glucose_metrics: Sequence[Row] = ()
    user_metrics: Sequence[Row] = ()
    risk_tiers: Sequence[Row] = ()
    days: Sequence[DayKey] = ()
    #: storage.feed.feed_row rows: the alerts and tier changes the batch publishes, and its meal analyses.
    feed: Sequence[Row] = ()


@dataclass
class WriteResult:
    #: event type -> rows that were new (the rest were already stored)
    new_rows: dict[str, int] = field(default_factory=dict)
    #: event type -> events in the batch
    events: dict[str, int] = field(default_factory=dict)
    days: int = 0
    #: feed rows that were new
    feed_rows: int = 0
    seconds: float = 0.0


#: The event type of meal analyses (MealAnalyzed.type), as WriteResult counts them.
MEAL_ANALYSIS = "meal_analysis"


def event_type(event: Event) -> str:
    return str(getattr(event, "type", type(event).__name__))


def is_transient(error: BaseException) -> bool:
    """Errors worth retrying the whole transaction for: the connection or the server, not the data."""
    if isinstance(error, OperationalError | InterfaceError):
        return True
    return isinstance(error, DBAPIError) and error.connection_invalidated


class Sink:
    """Example:
        sink = Sink.from_url("postgresql+psycopg://postgres@127.0.0.1:35432/vitalstream")
        sink.write(BatchWrite(events=[reading]))
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, database_url: str) -> Sink:
        # One writer thread at a time; pre-ping replaces connections a database restart has closed.
        return cls(create_engine(database_url, pool_size=2, max_overflow=0, pool_pre_ping=True))

    def write(self, batch: BatchWrite) -> WriteResult:
        """Store a batch in one transaction; raises on failure (nothing of the batch is then stored)."""
        started = time.perf_counter()
        by_type: dict[str, list[Event]] = defaultdict(list)
        for event in batch.events:
            by_type[event_type(event)].append(event)
        result = WriteResult(events={kind: len(events) for kind, events in by_type.items()})
        if batch.meal_analyses:
            result.events[MEAL_ANALYSIS] = len(batch.meal_analyses)
        with self.engine.begin() as connection:
            for kind, events in by_type.items():
                result.new_rows[kind] = insert_raw(connection, events)
            if batch.meal_analyses:
                result.new_rows[MEAL_ANALYSIS] = insert_meal_analyses(connection, batch.meal_analyses)
            upsert_glucose_metrics(connection, batch.glucose_metrics)
            upsert_user_metrics(connection, batch.user_metrics)
            upsert_risk_tiers(connection, batch.risk_tiers)
            # After the analyses: a meal's day reads the estimates stored just above.
            result.days = upsert_daily_totals(connection, batch.days, datetime.now(UTC))
            result.feed_rows = append_feed(connection, batch.feed)
        result.seconds = time.perf_counter() - started
        return result

    def write_profiles(self, profiles: Sequence[UserProfile], deleted_user_ids: Sequence[str]) -> None:
        """Store profiles and forget the deleted users' (tombstones) in one transaction; the two must not overlap."""
        with self.engine.begin() as connection:
            delete_profiles(connection, deleted_user_ids)
            upsert_profiles(connection, profiles)

    def close(self) -> None:
        self.engine.dispose()
