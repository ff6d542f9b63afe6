"""The stream worker's retention schedule: storage.retention.apply_retention every interval, in a thread of its own.

The worker writes the hypertables, so it also trims them. Every replica runs the schedule; dropping chunks that
another replica already dropped is a no-op, so no leader is needed.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from sqlalchemy import create_engine
from sqlalchemy.exc import SQLAlchemyError

from storage.retention import RetentionPolicy, apply_retention
from vitalstream.config import Settings

log = logging.getLogger(__name__)


def policy_of(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(raw_days=settings.retention_raw_days, snapshot_days=settings.retention_snapshot_days)


def retain_once(database_url: str, policy: RetentionPolicy) -> dict[str, int]:
    """Apply the policy now, in one transaction; returns what apply_retention removed."""
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    try:
        with engine.begin() as connection:
            return apply_retention(connection, policy, datetime.now(UTC))
    finally:
        engine.dispose()


def start_retention(settings: Settings) -> threading.Event | None:
    """Start the schedule (first run at once); set the returned event to stop it. None when it is switched off."""
    if settings.retention_interval_s <= 0:
        log.info("retention schedule off (VITALSTREAM_RETENTION_INTERVAL_S is 0)")
        return None
    stop = threading.Event()
    policy = policy_of(settings)

    def loop() -> None:
        while not stop.is_set():
            try:
                removed = retain_once(settings.database, policy)
                log.info("retention applied", extra={"removed": {k: v for k, v in removed.items() if v},
                                                     "raw_days": policy.raw_days,
                                                     "snapshot_days": policy.snapshot_days})
            except SQLAlchemyError as error:
                # The next round tries again; nothing is lost by waiting.
                log.warning("retention failed", extra={"error": str(error)[:500]})
            stop.wait(settings.retention_interval_s)

    threading.Thread(target=loop, name="retention", daemon=True).start()
    return stop
