"""A private inference-consumer deployment for one test: its own topic prefix, consumer group and object store;
the consumer run in a thread (for looking inside) or as `vitalstream worker inference` subprocesses."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client import CollectorRegistry

from inference_consumer.consumer import ConsumerTopics, InferenceConsumer
from inference_consumer.metrics import InferenceMetrics
from producers.client import EventProducer
from producers.config import ProducerConfig
from producers.photos import photo_ref
from schemas.events import MealLogged, PhotoContentType, PhotoRef
from stack.probes import free_port, sample_key, scrape_metrics
from stack.testing import consume_from_start
from vitalstream.config import Settings, env_names
from vitalstream.kafka_admin import create_topics
from vitalstream.object_store import LocalObjectStore

T = TypeVar("T")


class ConsumerProcess:
    """One `vitalstream worker inference` subprocess, its log in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self.metrics_port = free_port()
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "vitalstream", "worker", "inference", "--metrics-port", str(self.metrics_port)],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM (the consumer finishes, flushes and commits), then SIGKILL if it is still there."""
        if self.running:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        return self.process.returncode

    def metric(self, name: str, **labels: str) -> float | None:
        """A sample's value; None if the endpoint does not answer (yet) or has no such sample."""
        try:
            samples = scrape_metrics(self.metrics_port)
        except OSError:
            return None
        return samples.get(sample_key(name, **labels))

    def metric_family(self, name: str) -> dict[str, float]:
        try:
            return {k: v for k, v in scrape_metrics(self.metrics_port).items() if k.startswith(name + "{")}
        except OSError:
            return {}

    def log_tail(self, chars: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


class TopicReader:
    """Reads a topic from its start in a background thread, keeping every message, until closed."""

    def __init__(self, kafka: str, topic: str) -> None:
        self._consumer = Consumer({"bootstrap.servers": kafka, "group.id": f"reader-{uuid.uuid4()}",
                                   "enable.auto.commit": False, "auto.offset.reset": "earliest"})
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        self._lock = threading.Lock()
        self._messages: list[Message] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name=f"reader-{topic}", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            batch = [m for m in self._consumer.consume(500, timeout=0.2) if m.error() is None]
            with self._lock:
                self._messages += batch
        self._consumer.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    @property
    def messages(self) -> list[Message]:
        with self._lock:
            return list(self._messages)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


@dataclass
class RunningConsumer:
    consumer: InferenceConsumer
    registry: CollectorRegistry
    thread: threading.Thread
    errors: list[BaseException] = field(default_factory=list)

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@dataclass
class Deployment:
    kafka: str
    directory: Path
    settings: Settings
    processes: list[ConsumerProcess] = field(default_factory=list)

    @classmethod
    def create(cls, kafka: str, directory: Path, **overrides: Any) -> Deployment:
        tag = uuid.uuid4().hex[:8]
        directory.mkdir(parents=True, exist_ok=True)
        values: dict[str, Any] = {"kafka_bootstrap_servers": kafka, "inference_topic_prefix": f"t{tag}.",
                                  "inference_group_id": f"inference-test-{tag}",
                                  "object_store_dir": directory / "objects"}
        values.update(overrides)
        deployment = cls(kafka, directory, Settings(**values))
        create_topics(AdminClient({"bootstrap.servers": kafka}), deployment.topics.all())
        return deployment

    @property
    def topics(self) -> ConsumerTopics:
        return ConsumerTopics.with_prefix(self.settings.inference_topic_prefix)

    @property
    def store(self) -> LocalObjectStore:
        return LocalObjectStore(self.settings.object_store_dir)

    # -- input ---------------------------------------------------------------------------------------
    def put_photo(self, data: bytes, name: str | None = None,
                  content_type: PhotoContentType = PhotoContentType.JPEG) -> PhotoRef:
        key = f"meal-photos/{name or hashlib.sha256(data).hexdigest()[:16]}"
        self.store.put(key, data)
        return photo_ref(key, data, content_type)

    @staticmethod
    def meal(photo: PhotoRef | None, user: str = "user-1") -> MealLogged:
        return MealLogged(user_id=user, device_id="phone", source="app", occurred_at=datetime.now(UTC),
                          meal_slot="lunch", photo=photo)

    def producer(self) -> EventProducer:
        return EventProducer(ProducerConfig(bootstrap_servers=self.kafka, linger_ms=5))

    def send(self, meals: list[MealLogged]) -> None:
        with self.producer() as producer:
            for meal in meals:
                producer.send(self.topics.meals, meal)

    def send_paced(self, meals: list[MealLogged], per_s: float) -> threading.Event:
        """Send `meals` at `per_s` in a background thread, as a steady stream; the event is set when all are sent."""
        sent = threading.Event()

        def produce() -> None:
            started = time.monotonic()
            with self.producer() as producer:
                for i, meal in enumerate(meals):
                    producer.send(self.topics.meals, meal)
                    producer.poll(0)
                    time.sleep(max(0.0, (i + 1) / per_s - (time.monotonic() - started)))
            sent.set()

        threading.Thread(target=produce, name="meal-producer", daemon=True).start()
        return sent

    # -- the consumer --------------------------------------------------------------------------------
    @contextmanager
    def running(self, topics: ConsumerTopics | None = None) -> Iterator[RunningConsumer]:
        """The consumer in a thread of this process (on `topics`, default the deployment's private ones);
        stopped (flushed, committed) on exit."""
        registry = CollectorRegistry()
        consumer = InferenceConsumer(self.settings, InferenceMetrics.create(registry))
        if topics is not None:
            consumer.topics = topics
        stop = threading.Event()
        running = RunningConsumer(consumer, registry, threading.Thread(target=lambda: None))

        def run() -> None:
            try:
                consumer.run(stop)
            except BaseException as error:
                running.errors.append(error)
                raise

        running.thread = threading.Thread(target=run, name="inference-consumer", daemon=True)
        running.thread.start()
        try:
            yield running
        finally:
            stop.set()
            running.thread.join(60)
        assert not running.thread.is_alive(), "the consumer did not stop within 60 s"
        assert not running.errors, running.errors

    def start_at_end(self, topic: str) -> None:
        """Make the consumer group start at `topic`'s current end, so it skips every earlier message (a shared
        topic holds other tests' meals)."""
        consumer = Consumer({"bootstrap.servers": self.kafka, "group.id": self.settings.inference_group_id,
                             "enable.auto.commit": False})
        try:
            partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
            ends = [TopicPartition(topic, p, consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
                    for p in partitions]
            consumer.commit(offsets=ends, asynchronous=False)
        finally:
            consumer.close()

    def env(self, **extra: str) -> dict[str, str]:
        names = env_names()
        env = {k: v for k, v in os.environ.items() if not k.startswith("VITALSTREAM_INFERENCE_")}
        for field_name in ("kafka_bootstrap_servers", "inference_topic_prefix", "inference_group_id",
                           "object_store_dir", "triton_url", "triton_protocol", "inference_max_batch",
                           "inference_max_wait_ms", "inference_deadline_s"):
            value = getattr(self.settings, field_name)
            if value is not None:
                env[names[field_name]] = str(value)
        env["VITALSTREAM_LOG_LEVEL"] = "INFO"
        env.update(extra)
        return env

    def start_process(self, name: str = "consumer", **extra_env: str) -> ConsumerProcess:
        process = ConsumerProcess(self.env(**extra_env), self.directory / f"{name}.log")
        self.processes.append(process)
        return process

    # -- output --------------------------------------------------------------------------------------
    def consume(self, topic: str, *, expect: int, timeout_s: float = 30.0) -> list[Message]:
        """At least `expect` messages from the start of `topic` (all there are once that many arrived)."""
        return consume_from_start(self.kafka, topic, expect=expect, timeout_s=timeout_s)

    def _offsets(self, committed: bool) -> dict[int, int]:
        topic = self.topics.meals.name
        consumer = Consumer({"bootstrap.servers": self.kafka, "group.id": self.settings.inference_group_id,
                             "enable.auto.commit": False})
        try:
            partitions = [TopicPartition(topic, p) for p in range(self.topics.meals.partitions)]
            if committed:
                return {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
            return {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
        finally:
            consumer.close()

    def committed(self) -> dict[int, int]:
        """The group's committed offset per partition of the meal topic (negative: none)."""
        return self._offsets(committed=True)

    def end_offsets(self) -> dict[int, int]:
        return self._offsets(committed=False)

    def fully_committed(self) -> bool:
        """Every partition with messages has its commit at the end (empty ones have none)."""
        committed = self.committed()
        return all(committed[p] == end for p, end in self.end_offsets().items() if end > 0)

    def wait_for(self, probe: Callable[[], T], *, timeout_s: float, what: str, interval_s: float = 0.25) -> T:
        """Call `probe` until it returns something truthy; fail with the consumers' log tails after the timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {p.log_path.name}\n{p.log_tail()}" for p in self.processes)
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; last: {value!r}\n{tails}")
            time.sleep(interval_s)

    def close(self) -> None:
        for process in self.processes:
            process.stop(timeout_s=30)
        admin = AdminClient({"bootstrap.servers": self.kafka})
        for future in admin.delete_topics([t.name for t in self.topics.all()], operation_timeout=10).values():
            future.result(timeout=30)
