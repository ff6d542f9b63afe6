"""Accepting events exactly once per client intent: Idempotency-Key replay, remembered event ids, then Kafka.

A request's idempotency key and event ids are claimed inside one database transaction that stays open while the
events are published. Success commits the claims with the response; a Kafka failure rolls them back, so the
client's retry publishes again (with the same event ids, which downstream writes treat as one). A concurrent
duplicate waits on the claimed rows and then sees the outcome of the first.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Engine

from api.errors import ApiError
from api.publisher import Publisher, PublishError
from schemas.events import Event
from storage.accounts import claim_event_ids, claim_idempotency_key, save_idempotent_response

log = logging.getLogger(__name__)

MAX_IDEMPOTENCY_KEY_CHARS = 255


@dataclass(frozen=True)
class IdempotencyKey:
    key: str
    request_sha256: str


def idempotency_key(key: str | None, method: str, path: str, body: Any) -> IdempotencyKey | None:
    """The key with a fingerprint of the request it was first used for (method, path, canonical JSON body)."""
    if key is None:
        return None
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return IdempotencyKey(key=key, request_sha256=hashlib.sha256(canonical.encode()).hexdigest())


@dataclass(frozen=True)
class Reply:
    status_code: int
    body: Any
    replayed: bool = False
    published: int = 0


def _unique(events: Sequence[Event]) -> list[Event]:
    seen: set[UUID] = set()
    unique = []
    for event in events:
        if event.event_id not in seen:
            seen.add(event.event_id)
            unique.append(event)
    return unique


class Intake:
    """Publishes accepted events once; see the module docstring for the protocol."""

    def __init__(self, engine: Engine, publisher: Publisher, ttl: timedelta,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._engine = engine
        self._publisher = publisher
        self._ttl = ttl
        self._clock = clock

    def submit(self, user_id: str, events: Sequence[Event], status_code: int, body: Any, *,
               remembered_ids: Collection[UUID] = (), key: IdempotencyKey | None = None) -> Reply:
        """Publish `events` and answer `status_code`/`body`, unless this is a resubmission.

        `remembered_ids`: the event ids chosen by the client (or derived from its data); those published within the
        TTL are skipped. `key`: an Idempotency-Key; a request repeating it gets the first response back.
        """
        events = _unique(events)
        if key is None and not remembered_ids:
            self._publish(events)
            return Reply(status_code, body, published=len(events))
        now = self._clock()
        expires_at = now + self._ttl
        with self._engine.begin() as connection:
            if key is not None:
                earlier = claim_idempotency_key(connection, user_id, key.key, key.request_sha256, now, expires_at)
                if earlier is not None:
                    return self._replay(earlier.request_sha256, earlier.status_code, earlier.response, key)
            fresh = claim_event_ids(connection, user_id, remembered_ids, now, expires_at)
            remembered = set(remembered_ids)
            new = [e for e in events if e.event_id not in remembered or e.event_id in fresh]
            if len(new) < len(events):
                log.info("resubmitted events skipped", extra={"user_id": user_id, "skipped": len(events) - len(new)})
            self._publish(new)
            if key is not None:
                save_idempotent_response(connection, user_id, key.key, status_code, body)
        return Reply(status_code, body, published=len(new))

    def _publish(self, events: Sequence[Event]) -> None:
        try:
            self._publisher.publish(events)
        except PublishError as error:
            raise ApiError(503, "kafka_unavailable",
                           f"the events were not accepted: {error}. Nothing was recorded as accepted; retry the "
                           "same request (same event ids or Idempotency-Key) to avoid duplicates",
                           headers={"Retry-After": "5"}) from error

    @staticmethod
    def _replay(request_sha256: str, status_code: int | None, response: Any, key: IdempotencyKey) -> Reply:
        if request_sha256 != key.request_sha256:
            raise ApiError(422, "idempotency_key_reused",
                           "this Idempotency-Key was used for a different request; use a new key for new data")
        if status_code is None:  # the first request is still running (only without row locks, e.g. a crash)
            raise ApiError(409, "request_in_progress", "a request with this Idempotency-Key is still in progress")
        return Reply(status_code, response, replayed=True)
