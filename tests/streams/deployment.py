"""A private stream-worker deployment for one test module: its own topic prefix, app id (consumer group and
changelog topics) and database, and `vitalstream worker streams` processes started as subprocesses."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from sqlalchemy import Engine, create_engine, text

from producers.client import EventProducer
from producers.config import ProducerConfig
from schemas.topics import Topic
from stack.probes import free_port, sample_key, scrape_metrics
from stack.testing import consume_from_start
from streams.app import WORKER_TOPICS, prefixed, topic_names
from streams.processor import TopicNames
from vitalstream.kafka_admin import create_topics

T = TypeVar("T")


class WorkerProcess:
    """One `vitalstream worker streams` subprocess, its log in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.metrics_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vitalstream", "worker", "streams", "--metrics-port", str(self.metrics_port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        return self

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown, no offset commit."""
        if self.process is not None and self.running:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL if it is still there after `timeout_s` (RECIPES: a crashed agent may hang)."""
        if self.process is None:
            return None
        if self.running:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode

    def metrics(self) -> dict[str, float]:
        """Samples of /metrics, keyed like 'name{label="v",...}' (labels sorted)."""
        return scrape_metrics(self.metrics_port)

    def metric(self, name: str, **labels: str) -> float:
        try:
            samples = self.metrics()
        except OSError:
            return 0.0
        return samples.get(sample_key(name, **labels), 0.0)

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


@dataclass
class Deployment:
    kafka: str
    database_url: str
    directory: Path
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    workers: list[WorkerProcess] = field(default_factory=list)

    @property
    def prefix(self) -> str:
        return f"t{self.tag}."

    @property
    def app_id(self) -> str:
        return f"streams-test-{self.tag}"

    @property
    def topics(self) -> TopicNames:
        return topic_names(self.prefix)

    def topic(self, topic: Topic) -> Topic:
        return prefixed(topic, self.prefix)

    def create_topics(self) -> None:
        create_topics(AdminClient({"bootstrap.servers": self.kafka}), [self.topic(t) for t in WORKER_TOPICS])

    @property
    def engine(self) -> Engine:
        if not hasattr(self, "_engine"):
            self._engine = create_engine(self.database_url)
        return self._engine

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VITALSTREAM_STREAMS_")}
        env.update({
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka,
            "DATABASE_URL": self.database_url,
            "VITALSTREAM_STREAMS_APP_ID": self.app_id,
            "VITALSTREAM_STREAMS_TOPIC_PREFIX": self.prefix,
            "VITALSTREAM_STREAMS_BATCH_WAIT_MS": "100",
            "VITALSTREAM_LOG_LEVEL": "INFO",
        })
        env.update(extra)
        return env

    def start_worker(self, name: str = "worker", **extra_env: str) -> WorkerProcess:
        worker = WorkerProcess(self.env(**extra_env), self.directory / f"{name}.log").start()
        self.workers.append(worker)
        return worker

    def producer(self) -> EventProducer:
        return EventProducer(ProducerConfig(bootstrap_servers=self.kafka, linger_ms=5))

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.engine.connect() as connection:
            return connection.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(text(sql), params).all())

    def wait_for(self, probe: Callable[[], T | None], *, timeout_s: float, what: str, interval_s: float = 0.5,
                 describe: Callable[[], str] | None = None) -> T:
        """Call `probe` until it returns something truthy; fail with `describe()`, the consumer group's lag and
        the workers' log tails after the timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = probe()
            if value:
                return value
            if time.monotonic() > deadline:
                tails = "\n".join(f"--- {w.log_path} (running: {w.running})\n{w.log_tail()}" for w in self.workers)
                detail = describe() if describe is not None else ""
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}; last: {value!r} {detail}\n"
                                     f"lag: {self.lag()}\n{tails}")
            time.sleep(interval_s)

    def lag(self) -> dict[str, int]:
        """Per source topic: messages not yet committed by the worker's consumer group."""
        consumer = Consumer({"bootstrap.servers": self.kafka, "group.id": self.app_id, "enable.auto.commit": False})
        try:
            lag: dict[str, int] = {}
            for topic in (self.topics.readings.name, self.topics.meals.name, self.topics.meal_analyses.name,
                          self.topics.profiles.name):
                partitions = [TopicPartition(topic, p) for p in range(self.topics.readings.partitions)]
                for committed in consumer.committed(partitions, timeout=10):
                    _, high = consumer.get_watermark_offsets(committed, timeout=10)
                    lag[topic] = lag.get(topic, 0) + high - max(committed.offset, 0)
            return lag
        finally:
            consumer.close()

    def consume(self, topic: str, *, expect: int, timeout_s: float = 30.0) -> list[Message]:
        """At least `expect` messages from the start of `topic` (all there are once that many arrived)."""
        return consume_from_start(self.kafka, topic, expect=expect, timeout_s=timeout_s)

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        if hasattr(self, "_engine"):
            self._engine.dispose()
        admin = AdminClient({"bootstrap.servers": self.kafka})
        names = [n for n in admin.list_topics(timeout=10).topics
                 if n.startswith(self.prefix) or n.startswith(f"{self.app_id}-")]
        if names:
            for future in admin.delete_topics(names, operation_timeout=30).values():
                with contextlib.suppress(Exception):  # best effort: a leftover topic is harmless
                    future.result(timeout=30)


def deployment_fixture(kafka: str, database_url: str, directory: Path) -> Iterator[Deployment]:
    deployment = Deployment(kafka=kafka, database_url=database_url, directory=directory)
    deployment.create_topics()
    try:
        yield deployment
    finally:
        deployment.close()
