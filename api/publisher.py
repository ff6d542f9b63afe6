"""Publishing a request's events: the call returns only once Kafka has acknowledged every one of them.

The producer client reports failures per flush, not per message, so batches are published one at a time: a flush
then covers exactly one request's messages, and a failure is that request's. Kafka answers a flush in a few
milliseconds, so this serialises little; when it is slow, waiting requests give up after `timeout_s` with 503.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from producers.client import EventProducer, Headers
from producers.config import ProducerConfig
from producers.errors import ProducerError
from producers.metrics import ProducerMetrics
from schemas.derived import UserProfile
from schemas.events import Event, MealLogged
from schemas.topics import MEALS, READINGS, USER_PROFILES, Topic
from vitalstream.config import Settings

log = logging.getLogger(__name__)

#: Extra time a flush gets beyond the delivery timeout, so that every message has been reported by then.
_FLUSH_MARGIN_S = 5.0


class PublishError(RuntimeError):
    """Kafka did not acknowledge the whole batch (some messages may still have been written)."""


def topic_for(event: Event) -> Topic:
    return MEALS if isinstance(event, MealLogged) else READINGS


def producer_config(settings: Settings) -> ProducerConfig:
    # A message not delivered within the publish timeout is reported failed rather than retried in the background,
    # so the response the client gets describes what happened to it.
    return ProducerConfig(bootstrap_servers=settings.kafka, client_id="vitalstream-api", linger_ms=5,
                          delivery_timeout_ms=max(1, int(settings.publish_timeout_s * 1000)))


class Publisher:
    def __init__(self, config: ProducerConfig, timeout_s: float, metrics: ProducerMetrics | None = None) -> None:
        # `metrics` made on the app's registry are served at /metrics; the default registry's are not.
        self._producer = EventProducer(config, metrics=metrics)
        self._timeout_s = timeout_s
        self._lock = threading.Lock()

    def publish(self, events: Sequence[Event]) -> None:
        """Send every event, keyed by user, and wait for the broker's acknowledgement (acks=all) of all of them."""
        if not events:
            return

        def send(producer: EventProducer) -> None:
            for event in events:
                producer.send(topic_for(event), event)

        self._deliver(send, len(events))

    def publish_profile(self, profile: UserProfile) -> None:
        """Send a user's profile to the compacted profile topic, keyed by user, and wait for its acknowledgement."""
        # Not an Event (no device or event id), so EventProducer.send's routing check does not apply; the headers
        # carry the type and schema version as send() does, so a consumer can route before decoding.
        headers: Headers = [("type", b"user_profile"), ("schema_version", str(profile.schema_version).encode())]
        self._deliver(lambda producer: producer.produce(USER_PROFILES.name, profile.model_dump_json().encode(),
                                                        key=profile.user_id.encode(), headers=headers), 1)

    def _deliver(self, send: Callable[[EventProducer], None], messages: int) -> None:
        if not self._lock.acquire(timeout=self._timeout_s):
            raise PublishError(f"Kafka has not acknowledged earlier requests within {self._timeout_s:g} s")
        try:
            send(self._producer)
            self._producer.flush(self._timeout_s + _FLUSH_MARGIN_S)
        except ProducerError as error:
            log.warning("publish failed", extra={"events": messages, "code": error.code,
                                                 "description": error.description})
            raise PublishError(f"Kafka did not acknowledge the events ({error.code}: {error.description})") from error
        finally:
            self._lock.release()

    def close(self) -> None:
        """Deliver whatever is still queued (nothing, unless a request was cut short)."""
        with self._lock:
            try:
                self._producer.flush(self._timeout_s)
            except ProducerError as error:
                log.error("messages left undelivered at shutdown", extra={"code": error.code,
                                                                         "description": error.description})
