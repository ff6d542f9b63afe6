"""The stream worker's database sink: one transaction per batch, raw rows first, then the derived rows.

Blocking (SQLAlchemy + psycopg); the worker runs `Sink.write` in a thread. Everything it writes is
idempotent (raw rows ON CONFLICT DO NOTHING, derived rows upserted), so a batch written twice, e.g. after
a crash between the commit and the Kafka offset commit, leaves the same rows.
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

from schemas.events import Event
from storage.derived import (
    DayKey,
    Row,
    upsert_daily_totals,
    upsert_glucose_metrics,
    upsert_risk_tiers,
    upsert_user_metrics,
)
from storage.raw import insert_raw

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchWrite:
    """Everything one batch stores."""

    events: Sequence[Event]
    glucose_metrics: Sequence[Row] = ()
    user_metrics: Sequence[Row] = ()
    risk_tiers: Sequence[Row] = ()
    days: Sequence[DayKey] = ()


@dataclass
class WriteResult:
    #: event type -> rows that were new (the rest were already stored)
    new_rows: dict[str, int] = field(default_factory=dict)
    #: event type -> events in the batch
    events: dict[str, int] = field(default_factory=dict)
    days: int = 0
    seconds: float = 0.0


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
        with self.engine.begin() as connection:
            for kind, events in by_type.items():
                result.new_rows[kind] = insert_raw(connection, events)
            upsert_glucose_metrics(connection, batch.glucose_metrics)
            upsert_user_metrics(connection, batch.user_metrics)
            upsert_risk_tiers(connection, batch.risk_tiers)
            result.days = upsert_daily_totals(connection, batch.days, datetime.now(UTC))
        result.seconds = time.perf_counter() - started
        return result

    def close(self) -> None:
        self.engine.dispose()
