"""EventProducer: one small wrapper around confluent_kafka.Producer that sends contract events.

Every message gets a delivery report; failures are counted and `flush()` raises one ProducerError for them,
so a caller that flushes can never lose messages silently.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from types import TracebackType

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from pydantic import ValidationError

from producers.config import ProducerConfig
from producers.errors import ProducerError
from producers.metrics import ProducerMetrics, default_metrics
from schemas.codec import encode
from schemas.events import Event
from schemas.topics import Topic

log = logging.getLogger(__name__)

Headers = list[tuple[str, str | bytes | None]]


@dataclass
class DeliveryCounts:
    """Running totals since the producer was made."""

    produced: int = 0
    delivered: int = 0
    failed: int = 0


class EventProducer:
    """Sends events keyed by user id. No network traffic until the first message.

    Example:
        with EventProducer(ProducerConfig(bootstrap_servers="127.0.0.1:39092")) as producer:
            producer.send(READINGS, reading)
    """

    def __init__(self, config: ProducerConfig, max_block_s: float = 60.0,
                 metrics: ProducerMetrics | None = None) -> None:
        self._config = config
        #: A process serving its own registry passes metrics made on it; others share the default registry's.
        self._metrics = metrics if metrics is not None else default_metrics()
        #: How long produce() may wait for room in a full local queue (Java's max.block.ms).
        self._max_block_s = max_block_s
        self._inner: Producer | None = None
        self.counts = DeliveryCounts()
        self._unreported_failures = 0
        self._first_failure: ProducerError | None = None
        self._fatal: ProducerError | None = None
        #: Headers per (topic, event class), made once the route is checked.
        self._headers: dict[tuple[str, type[Event]], Headers] = {}

    @property
    def _producer(self) -> Producer:
        if self._inner is None:
            try:
                self._inner = Producer({
                    **self._config.librdkafka(),
                    "on_delivery": self._on_delivery,
                    "error_cb": self._on_error,
                    "logger": log,
                })
            except KafkaException as exc:  # librdkafka refused the configuration
                raise ProducerError.from_kafka(exc, "producer configuration: ") from exc
        return self._inner

    # -- sending -------------------------------------------------------------------------------
    def send(self, topic: Topic, event: Event) -> None:
        """Encode `event` and queue it for `topic`, keyed by its user id.

        Headers carry the event type and schema version so a consumer can route before decoding.
        The Kafka timestamp is left to the producer (send time): the event's own times live in the payload,
        and a historical timestamp would let retention delete a back-filled segment at once.
        """
        headers = self._headers.get((topic.name, type(event)))
        if headers is None:
            headers = self._check_route(topic, event)
        self.produce(topic.name, encode(event), key=event.user_id.encode(), headers=headers)

    def produce(self, topic: str, value: bytes, key: bytes | None = None, headers: Headers | None = None) -> None:
        """Queue raw bytes. Polls after each message; on a full local queue, polls and retries."""
        if self._fatal is not None:
            self._metrics.rejected(topic)
            raise self._fatal
        producer = self._producer
        deadline = None
        while True:
            try:
                producer.produce(topic, value, key, headers=headers)
            except BufferError:
                # The local queue is full: serve delivery reports (which frees room) and try again.
                now = time.monotonic()
                deadline = deadline or now + self._max_block_s
                if now >= deadline:
                    self._metrics.rejected(topic)
                    raise ProducerError("_QUEUE_FULL", f"local queue still full after {self._max_block_s:g} s "
                                        f"({len(producer)} messages waiting)") from None
                producer.poll(min(0.1, deadline - now))
                continue
            except KafkaException as exc:
                self._metrics.rejected(topic)
                raise ProducerError.from_kafka(exc, f"topic {topic}: ") from exc
            self.counts.produced += 1
            producer.poll(0)
            return

    def poll(self, timeout_s: float = 0.0) -> None:
        """Serve delivery reports (useful while a caller waits between messages)."""
        if self._inner is not None:
            self._inner.poll(timeout_s)

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait for every queued message; raise one ProducerError if any was not delivered."""
        if self._inner is None:
            return
        remaining = self._inner.flush(timeout_s)
        self._raise_failures()
        if remaining:
            raise ProducerError("_TIMED_OUT", f"{remaining} message(s) still undelivered after {timeout_s:g} s")

    def __len__(self) -> int:
        return 0 if self._inner is None else len(self._inner)

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.flush()
            return
        # Already failing: still deliver what we can, but never hide the original exception.
        try:
            self.flush()
        except ProducerError as flush_error:
            log.error("flush after an error failed", extra={"code": flush_error.code,
                                                            "description": flush_error.description})

    # -- callbacks (run inside poll/flush) -------------------------------------------------------
    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        topic = message.topic() or ""
        if error is None:
            self.counts.delivered += 1
            self._metrics.delivered(topic, message.latency())
            return
        self.counts.failed += 1
        self._metrics.failed(topic)
        self._unreported_failures += 1
        if self._first_failure is None:
            self._first_failure = ProducerError.from_kafka(
                error, f"topic {message.topic()} partition {message.partition()}: ")
            log.warning("delivery failed", extra={"topic": message.topic(), "code": error.name(),
                                                  "error": error.str()})

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = ProducerError.from_kafka(error, "fatal producer error: ")
            log.error("fatal producer error", extra={"code": error.name(), "error": error.str()})
        else:
            # Transient (broker restarts, connection drops): librdkafka retries on its own.
            log.warning("kafka client error", extra={"code": error.name(), "error": error.str()})

    def _raise_failures(self) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._unreported_failures == 0 or self._first_failure is None:
            return
        first, failed = self._first_failure, self._unreported_failures
        self._unreported_failures, self._first_failure = 0, None
        raise ProducerError(first.code, f"{failed} message(s) not delivered; first: {first.description}")

    def _check_route(self, topic: Topic, event: Event) -> Headers:
        # Once per (topic, event class): a meal sent to the readings topic is a bug to catch here, not downstream.
        if topic.payload is None:
            raise ValueError(f"topic {topic.name} carries raw bytes, not events")
        try:
            topic.payload.validate_python(event)
        except ValidationError as error:
            raise ValueError(f"topic {topic.name} does not carry {type(event).__name__} events") from error
        event_type = str(getattr(event, "type", type(event).__name__))
        headers: Headers = [("type", event_type.encode()), ("schema_version", str(event.schema_version).encode())]
        self._headers[topic.name, type(event)] = headers
        return headers

