"""The meal-photo consumer: MealLogged with a photo → Triton → MealAnalyzed, at least once, batched across messages.

One thread owns Kafka (consume, produce, commit, pause, resume). Photos are read, checked and decoded by a
small thread pool; batches go to Triton from threads that each own a client (`client_pool`). The loop:

  take      a message is tracked by offset; not a MealLogged → dead letter; no photo → finished at once;
  decode    object store → size + sha256 check → Pillow (formats and pixel count limited) → 224 × 224 crop;
            a rejected photo → dead letter with its reason;
  batch     decoded photos wait in a Batcher: sent when max_batch are waiting or the oldest waited max_wait;
  infer     one request per batch; while Triton is unavailable it is retried with exponential back-off
            (tenacity), and the loop pauses every assigned partition, still polling so the group keeps it,
            until a request succeeds again (or, with nothing to send, a readiness probe does);
  publish   MealAnalyzed keyed by user id (its id is deterministic: a repeat is a no-op downstream);
  commit    a partition's offset moves only up to its first message whose analysis or dead letter Kafka has
            not acknowledged (delivery report): at least once, nothing skipped.

A message not analysed within the deadline after it was taken goes to the dead-letter topic as
deadline_exceeded, whatever it was waiting for. On a revoke, results still in flight for those partitions are
dropped: the next owner reads them again from the last commit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import Enum
from importlib import resources
from typing import Any

import numpy as np
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from numpy.typing import NDArray

from inference_consumer import analysis
from inference_consumer.batching import Batcher
from inference_consumer.client_pool import ClientPool
from inference_consumer.dead_letters import DeadLetterReason, Headers, headers
from inference_consumer.metrics import InferenceMetrics
from inference_consumer.offsets import OffsetTracker
from inference_consumer.photos import PhotoRejectedError, load_photo
from inference_consumer.triton_client import (
    InferResult,
    Transport,
    TritonClient,
    TritonGaveUpError,
    TritonRequestError,
    transport_for,
)
from producers.config import ProducerConfig
from schemas.codec import ContractError, decode, encode
from schemas.events import MealLogged
from schemas.meal_analysis import ModelVersion
from schemas.topics import DEAD_LETTER, MEAL_ANALYSES, MEALS, Topic
from vitalstream.config import Settings
from vitalstream.object_store import ObjectStore, object_store

log = logging.getLogger(__name__)

CLIENT_ID = "vitalstream-inference"
#: How often finished offsets are committed (and always on a revoke and at shutdown).
COMMIT_INTERVAL_S = 1.0
#: How often the loop logs its totals.
PROGRESS_INTERVAL_S = 30.0
#: Photos decoded at once; Pillow releases the GIL while it decodes.
DECODE_THREADS = 4
#: librdkafka statistics (consumer lag) this often.
STATISTICS_INTERVAL_MS = 5000
_ANALYSIS_HEADERS: Headers = [("type", b"meal_analysis"), ("schema_version", b"1")]


def prefixed(topic: Topic, prefix: str) -> Topic:
    return replace(topic, name=f"{prefix}{topic.name}") if prefix else topic


@dataclass(frozen=True)
class ConsumerTopics:
    meals: Topic
    analyses: Topic
    dead_letter: Topic

    @classmethod
    def with_prefix(cls, prefix: str) -> ConsumerTopics:
        return cls(prefixed(MEALS, prefix), prefixed(MEAL_ANALYSES, prefix), prefixed(DEAD_LETTER, prefix))

    def all(self) -> list[Topic]:
        return [self.meals, self.analyses, self.dead_letter]


def packaged_dish_labels() -> list[str]:
    """dish_probs' labels, in order: the committed label file of the meal_analyzer model."""
    path = resources.files("inference_consumer").joinpath("model_repository", "meal_analyzer", "dish_labels.txt")
    return path.read_text().splitlines()


class _State(Enum):
    DECODING = "decoding"
    QUEUED = "queued"
    INFERRING = "inferring"
    PUBLISHING = "publishing"
    DROPPED = "dropped"


_WAITING = (_State.DECODING, _State.QUEUED, _State.INFERRING)


@dataclass(eq=False)
class _Work:
    """One meal event with a photo, from being taken until its output is delivered."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes
    meal: MealLogged
    taken_at: float
    deadline: float
    state: _State = _State.DECODING
    image: NDArray[np.uint8] | None = None


@dataclass
class _Batch:
    items: list[_Work]
    future: Future[InferResult]


@dataclass
class _Health:
    """Whether Triton answered last time; set from the client threads, read by the loop."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    down_since: float | None = None
    last_error: str = ""

    @property
    def down(self) -> bool:
        with self.lock:
            return self.down_since is not None

    def mark_down(self, error: Exception, now: float) -> bool:
        """True if this is news (Triton was up)."""
        with self.lock:
            self.last_error = str(error)
            if self.down_since is None:
                self.down_since = now
                return True
            return False

    def mark_up(self, now: float) -> float | None:
        """How long it was down, if it was."""
        with self.lock:
            since, self.down_since = self.down_since, None
            return None if since is None else now - since


class InferenceConsumer:
    """Run with `run(stop)` until `stop` is set. Several replicas with one group id share the partitions."""

    def __init__(self, settings: Settings, metrics: InferenceMetrics, *,
                 transport: Callable[[], Transport] | None = None, store: ObjectStore | None = None,
                 dish_labels: Sequence[str] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.topics = ConsumerTopics.with_prefix(settings.inference_topic_prefix)
        self._metrics = metrics
        self._store = store or object_store(settings)
        self._labels = list(dish_labels) if dish_labels is not None else packaged_dish_labels()
        self._clock = clock
        self._transport = transport or transport_for(settings.triton, settings.triton_protocol)
        self._batcher: Batcher[_Work] = Batcher(settings.inference_max_batch, settings.inference_max_wait_ms / 1000)
        self._backlog_limit = (settings.inference_concurrency + 2) * settings.inference_max_batch
        self._tracker = OffsetTracker()
        self._works: dict[tuple[int, int], _Work] = {}
        self._decoding: list[tuple[_Work, Future[NDArray[np.uint8]]]] = []
        self._inferring: list[_Batch] = []
        self._probe: Future[bool] | None = None
        self._health = _Health()
        self._stopping = threading.Event()
        self._paused = False
        self._fatal: KafkaException | None = None
        self._last_commit = 0.0
        self._last_progress = 0.0
        self.counts: dict[str, int] = {"analysed": 0, "no_photo": 0, "dead_letter": 0}
        self._consumer: Consumer | None = None
        self._producer: Producer | None = None
        self._decoder: ThreadPoolExecutor | None = None
        self._clients: ClientPool | None = None

    # -- lifecycle -----------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set; then finish what can be finished, flush, commit and leave the group."""
        s = self.settings
        self._producer = Producer({
            **ProducerConfig(bootstrap_servers=s.kafka, client_id=CLIENT_ID, linger_ms=5).librdkafka(),
            "error_cb": self._on_kafka_error, "logger": log,
        })
        self._consumer = Consumer({
            "bootstrap.servers": s.kafka, "group.id": s.inference_group_id, "client.id": CLIENT_ID,
            "enable.auto.commit": False, "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
            "statistics.interval.ms": STATISTICS_INTERVAL_MS, "stats_cb": self._metrics.lag.update_from_statistics,
            "on_commit": self._on_commit, "error_cb": self._on_kafka_error, "logger": log,
        })
        decoder = ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="decode")
        clients = ClientPool(s.inference_concurrency, self._new_client)
        self._decoder, self._clients = decoder, clients
        self._consumer.subscribe([self.topics.meals.name], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                 on_lost=self._on_lost)
        log.info("inference consumer started", extra={
            "topic": self.topics.meals.name, "group_id": s.inference_group_id, "triton": s.triton,
            "protocol": s.triton_protocol, "model": s.inference_model, "max_batch": s.inference_max_batch,
            "max_wait_ms": s.inference_max_wait_ms, "concurrency": s.inference_concurrency,
            "deadline_s": s.inference_deadline_s})
        self._last_progress = self._clock()
        try:
            while not stop.is_set():
                self._step()
                if self._fatal is not None:
                    raise self._fatal
        finally:
            self._shutdown(decoder, clients)

    def _new_client(self) -> TritonClient:
        return TritonClient(self.settings.inference_model, list(analysis.OUTPUT_WIDTHS), self._transport)

    def _shutdown(self, decoder: ThreadPoolExecutor, clients: ClientPool) -> None:
        self._stopping.set()  # retries and back-off sleeps end now
        decoder.shutdown(wait=True, cancel_futures=True)
        pending = [b.future for b in self._inferring]
        wait(pending, timeout=60)
        if self._fatal is None:
            self._collect_inferred()  # publish what Triton already answered
        clients.close()
        assert self._producer is not None and self._consumer is not None
        remaining = self._producer.flush(30)
        if remaining:
            log.error("%d message(s) not delivered at shutdown; their offsets stay uncommitted", remaining)
        self._commit(asynchronous=False)
        self._consumer.close()
        self._log_progress(final=True)

    # -- the loop ------------------------------------------------------------------------------------
    def _step(self) -> None:
        assert self._consumer is not None and self._producer is not None
        self._sync_pause()
        backlog = self._backlog()
        if self._paused or backlog < self._backlog_limit:
            room = max(1, self._backlog_limit - backlog)
            for message in self._consumer.consume(num_messages=room, timeout=self._poll_timeout()):
                self._take(message)
        else:  # enough photos on hand: let the pools catch up instead of taking more
            busy: list[Future[Any]] = [f for _, f in self._decoding] + [b.future for b in self._inferring]
            wait(busy, timeout=0.1, return_when=FIRST_COMPLETED)
        self._collect_decoded()
        self._collect_inferred()
        self._collect_probe()
        now = self._clock()
        self._expire(now)
        self._dispatch(now)
        self._producer.poll(0)
        if now - self._last_commit >= COMMIT_INTERVAL_S:
            self._commit()
            self._last_commit = now
        if now - self._last_progress >= PROGRESS_INTERVAL_S:
            self._log_progress()
            self._last_progress = now

    def _backlog(self) -> int:
        return sum(1 for w in self._works.values() if w.state in _WAITING)

    def _poll_timeout(self) -> float:
        if self._health.down:
            return 0.1
        if self._decoding or self._inferring:
            return 0.005  # results land in other threads; look again soon
        until_batch = self._batcher.wait_s(self._clock())
        return 0.1 if until_batch is None else min(0.1, until_batch)

    def _sync_pause(self) -> None:
        assert self._consumer is not None
        want = self._health.down
        if want == self._paused:
            return
        assignment = self._consumer.assignment()
        if want:
            self._consumer.pause(assignment)
            log.warning("triton unavailable: partitions paused, retrying with back-off",
                        extra={"partitions": sorted(p.partition for p in assignment),
                               "error": self._health.last_error})
        else:
            self._consumer.resume(assignment)
            log.info("triton is back: partitions resumed", extra={"partitions": sorted(p.partition
                                                                                       for p in assignment)})
        self._paused = want
        self._metrics.paused.set(1 if want else 0)

    # -- take, decode --------------------------------------------------------------------------------
    def _take(self, message: Message) -> None:
        error = message.error()
        if error is not None:
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning("consume error", extra={"code": error.name(), "error": error.str()})
                if error.fatal():
                    self._fatal = KafkaException(error)
            return
        partition, offset = message.partition(), message.offset()
        if partition is None or offset is None:
            return  # not a consumed record (librdkafka gives both for every one)
        if not self._tracker.take(partition, offset):
            return  # fetched again after a pause: already ours
        key, value = message.key(), message.value()
        try:
            if value is None:
                raise ContractError(["value: missing (null message)"])
            meal: MealLogged = decode(MEALS, value)
        except ContractError as err:
            self._dead_letter(partition, offset, key, value, DeadLetterReason.SCHEMA_INVALID, str(err))
            return
        if meal.photo is None:
            self._tracker.finish(partition, offset)
            self._count("no_photo")
            return
        now = self._clock()
        work = _Work(partition, offset, key, value, meal, now, now + self.settings.inference_deadline_s)
        self._works[partition, offset] = work
        photo = meal.photo
        assert self._decoder is not None
        self._decoding.append((work, self._decoder.submit(load_photo, self._store, photo)))

    def _collect_decoded(self) -> None:
        still: list[tuple[_Work, Future[NDArray[np.uint8]]]] = []
        for work, future in self._decoding:
            if not future.done():
                still.append((work, future))
                continue
            if work.state is not _State.DECODING:
                continue  # expired or revoked meanwhile
            try:
                work.image = future.result()
            except PhotoRejectedError as rejected:
                self._dead_letter_work(work, rejected.reason, rejected.detail)
                continue
            except Exception as err:
                log.exception("photo could not be read", extra={"partition": work.partition, "offset": work.offset})
                self._dead_letter_work(work, DeadLetterReason.PHOTO_UNREADABLE, f"{type(err).__name__}: {err}")
                continue
            work.state = _State.QUEUED
            self._batcher.add(work, self._clock())
        self._decoding = still

    # -- infer ---------------------------------------------------------------------------------------
    def _dispatch(self, now: float) -> None:
        assert self._clients is not None
        while self._batcher.due(now):
            # While Triton is down one batch at a time goes out: it is the probe that notices the recovery.
            limit = 1 if self._health.down else self.settings.inference_concurrency
            if len(self._inferring) >= limit:
                return
            items = self._batcher.take(now)
            images = np.stack([w.image for w in items if w.image is not None])
            assert len(images) == len(items), "a queued photo has no pixels"
            for work in items:
                work.state = _State.INFERRING
            give_up_at = max(w.deadline for w in items)
            future = self._clients.submit(self._infer_job(images, give_up_at))
            self._inferring.append(_Batch(items, future))
            self._metrics.batch_size.observe(len(items))
        if self._health.down and not self._inferring and self._probe is None:
            self._probe = self._clients.submit(self._wait_ready)

    def _infer_job(self, images: NDArray[np.uint8], give_up_at: float) -> Callable[[TritonClient], InferResult]:
        def infer(client: TritonClient) -> InferResult:
            result = client.infer_with_retry(images, give_up_at, self._stopping, self._on_triton_retry, self._clock)
            self._on_triton_up()
            return result

        return infer

    def _wait_ready(self, client: TritonClient) -> bool:
        delay_s = 0.1
        while not self._stopping.is_set():
            if client.ready():
                self._on_triton_up()
                return True
            self._stopping.wait(delay_s)
            delay_s = min(delay_s * 2, 5.0)
        return False

    def _on_triton_retry(self, error: Exception, wait_s: float) -> None:
        self._metrics.errors.labels("triton_unavailable").inc()
        if self._health.mark_down(error, self._clock()):
            log.warning("triton unavailable", extra={"error": str(error), "retry_in_s": round(wait_s, 2)})

    def _on_triton_up(self) -> None:
        down_s = self._health.mark_up(self._clock())
        if down_s is not None:
            log.info("triton answers again", extra={"down_s": round(down_s, 1)})

    def _collect_probe(self) -> None:
        if self._probe is not None and self._probe.done():
            self._probe = None

    def _collect_inferred(self) -> None:
        still: list[_Batch] = []
        for batch in self._inferring:
            if not batch.future.done():
                still.append(batch)
                continue
            waiting = [w for w in batch.items if w.state is _State.INFERRING]
            try:
                result = batch.future.result()
            except TritonGaveUpError as err:
                if not self._stopping.is_set():  # at shutdown they stay uncommitted for the next owner
                    for work in waiting:
                        self._dead_letter_work(work, DeadLetterReason.DEADLINE_EXCEEDED, str(err))
                continue
            except TritonRequestError as err:
                for work in waiting:
                    self._dead_letter_work(work, DeadLetterReason.INFERENCE_FAILED, str(err))
                continue
            self._publish(batch.items, result)
        self._inferring = still

    # -- publish, dead-letter ------------------------------------------------------------------------
    def _publish(self, items: list[_Work], result: InferResult) -> None:
        models = [ModelVersion(name=result.model_name, version=result.model_version or "unknown")]
        try:
            analyses = [analysis.analyse(o, self._labels) for o in analysis.split_batch(result.outputs)]
            if len(analyses) != len(items):
                raise ValueError(f"model outputs: {len(analyses)} answers for {len(items)} photos")
        except ValueError as err:
            for work in items:
                if work.state is _State.INFERRING:
                    self._dead_letter_work(work, DeadLetterReason.INFERENCE_FAILED, str(err))
            return
        self._metrics.triton_seconds.observe(result.seconds)
        now, analysed_at = self._clock(), datetime.now(UTC)
        for work, found in zip(items, analyses, strict=True):
            if work.state is not _State.INFERRING:
                continue
            latency_s = now - work.taken_at
            event = analysis.meal_analyzed(work.meal, found, models, result.seconds * 1000, latency_s * 1000,
                                           analysed_at)
            self._metrics.latency_seconds.observe(latency_s)
            work.state, work.image = _State.PUBLISHING, None
            self._produce(self.topics.analyses.name, encode(event), event.user_id.encode(), _ANALYSIS_HEADERS,
                          work.partition, work.offset, "analysed")

    def _dead_letter_work(self, work: _Work, reason: DeadLetterReason, error: str) -> None:
        if work.state is _State.QUEUED:
            self._batcher.remove(lambda w: w is work)
        work.state, work.image = _State.PUBLISHING, None
        self._dead_letter(work.partition, work.offset, work.key, work.value, reason, error)

    def _dead_letter(self, partition: int, offset: int, key: bytes | None, value: bytes | None,
                     reason: DeadLetterReason, error: str) -> None:
        log.warning("dead letter", extra={"reason": reason.value, "error": error, "partition": partition,
                                          "offset": offset})
        self._metrics.errors.labels(reason.value).inc()
        self._produce(self.topics.dead_letter.name, value, key,
                      headers(reason, error, self.topics.meals.name, partition, offset,
                              self.settings.inference_group_id),
                      partition, offset, "dead_letter")

    def _produce(self, topic: str, value: bytes | None, key: bytes | None, message_headers: Headers,
                 partition: int, offset: int, outcome: str) -> None:
        assert self._producer is not None

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                # Never commit past it; stop, so that a restart reads it again (ids are deterministic).
                log.error("delivery failed", extra={"topic": topic, "code": error.name(), "error": error.str()})
                self._fatal = KafkaException(error)
                return
            self._tracker.finish(partition, offset)
            work = self._works.get((partition, offset))
            if work is not None and work.state is _State.PUBLISHING:
                del self._works[partition, offset]
            self._count(outcome)

        while True:
            try:
                self._producer.produce(topic, value, key, headers=message_headers, on_delivery=delivered)
                return
            except BufferError:  # the local queue is full: serve delivery reports to make room
                self._producer.poll(0.1)
                if self._fatal is not None:
                    raise self._fatal from None

    def _count(self, outcome: str) -> None:
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self._metrics.messages.labels(outcome).inc()
        if outcome == "analysed":
            self._metrics.images.inc()

    # -- deadlines, commits, rebalances --------------------------------------------------------------
    def _expire(self, now: float) -> None:
        for work in list(self._works.values()):
            if work.state in _WAITING and now >= work.deadline:
                self._dead_letter_work(work, DeadLetterReason.DEADLINE_EXCEEDED,
                                       f"not analysed within {self.settings.inference_deadline_s:g} s of being "
                                       f"taken (was {work.state.value})")

    def _commit(self, partitions: set[int] | None = None, asynchronous: bool = True) -> None:
        assert self._consumer is not None
        positions = self._tracker.committable(partitions)
        if not positions:
            return
        offsets = [TopicPartition(self.topics.meals.name, p, o) for p, o in sorted(positions.items())]
        try:
            if asynchronous:
                self._consumer.commit(offsets=offsets, asynchronous=True)
            else:
                self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as err:
            self._commit_failed(set(positions), str(err))
            return
        self._tracker.committed(positions)

    def _commit_failed(self, partitions: set[int], error: str) -> None:
        # Not fatal: the next commit covers these offsets; a crash before it means re-analysis, not loss.
        log.warning("commit failed", extra={"partitions": sorted(partitions), "error": error})
        self._metrics.errors.labels("commit_failed").inc()
        self._tracker.commit_failed(partitions)

    def _on_commit(self, error: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if error is not None:
            self._commit_failed({p.partition for p in partitions}, error.str())

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = {p.partition for p in partitions}
        self._tracker.forget(numbers)
        self._paused = False  # a new assignment starts unpaused; the loop pauses it again if Triton is down
        log.info("partitions assigned", extra={"partitions": sorted(numbers)})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = {p.partition for p in partitions}
        self._drop(numbers)
        assert self._producer is not None
        self._producer.flush(30)  # what is published gets committed, so the next owner does not redo it
        self._commit(numbers, asynchronous=False)
        self._forget(numbers, "revoked")

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = {p.partition for p in partitions}
        self._drop(numbers)
        self._forget(numbers, "lost")

    def _drop(self, numbers: set[int]) -> None:
        for work in list(self._works.values()):
            if work.partition in numbers and work.state in _WAITING:
                work.state, work.image = _State.DROPPED, None
                del self._works[work.partition, work.offset]
        self._batcher.remove(lambda w: w.partition in numbers)

    def _forget(self, numbers: set[int], why: str) -> None:
        self._tracker.forget(numbers)
        for key in [k for k in self._works if k[0] in numbers]:
            del self._works[key]
        self._metrics.lag.forget()
        log.info("partitions %s", why, extra={"partitions": sorted(numbers)})

    def _on_kafka_error(self, error: KafkaError) -> None:
        if error.fatal():
            log.error("fatal kafka error", extra={"code": error.name(), "error": error.str()})
            self._fatal = KafkaException(error)
        else:  # transient (a broker restart, a dropped connection): librdkafka retries by itself
            log.warning("kafka client error", extra={"code": error.name(), "error": error.str()})

    def _log_progress(self, final: bool = False) -> None:
        log.info("inference consumer stopped" if final else "inference consumer progress", extra={
            **self.counts, "backlog": self._backlog(), "pending_offsets": self._tracker.pending(),
            "paused": self._paused})
