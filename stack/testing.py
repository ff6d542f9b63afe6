"""Real services for test suites: the local stack under a lease, or containers; and Kafka topic helpers.

tests/conftest.py turns these into pytest fixtures; they live here so test modules can import their types.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from stack.base import StackError
from stack.manager import Lease
from vitalstream.config import Settings

#: Where each service's address comes from once it is up: an external variable wins (Settings reads it).
_ADDRESS: dict[str, Callable[[Settings], str]] = {
    "kafka": lambda s: s.kafka,
    "postgres": lambda s: s.database,
    "triton": lambda s: s.triton,
    "prometheus": lambda s: s.prometheus,
}


#: `topic_factory(partitions=3, config=None) -> name`
TopicFactory = Callable[..., str]


class StackProvider(Protocol):
    settings: Settings

    def require(self, name: str) -> str:
        """Make sure the service is up; return the address clients use."""

    def close(self) -> None:
        """Stop what this session started (if it is the last session)."""


class LocalStack:
    """The local stack under a lease: started lazily, one service at a time, as tests ask for them."""

    def __init__(self, settings: Settings, keep: bool, say: Callable[[str], None]) -> None:
        self.settings = settings
        self._keep = keep
        self._say = say
        self._lease: Lease | None = None
        self._up: set[str] = set()

    def require(self, name: str) -> str:
        if name not in self._up:
            if self._lease is None:
                self._lease = Lease(self.settings).acquire()
            try:
                result = self._lease.up([name], progress=lambda m: self._say(f"local stack: {m}"))[name]
            except StackError as err:
                pytest.fail(f"local stack: {name} could not be started:\n{err}", pytrace=False)
            self._say(f"local stack: {name} {result.note} ({result.address})")
            self._up.add(name)
        return _ADDRESS[name](self.settings)

    def close(self) -> None:
        if self._lease is not None:
            self._lease.release(keep=self._keep, progress=lambda m: self._say(f"local stack: {m}"))


class DockerStack:
    """Kafka and PostgreSQL (TimescaleDB image) in containers, started on first use."""

    _IMAGES: ClassVar[dict[str, str]] = {"kafka": "confluentinc/cp-kafka:7.6.1",
                                         "postgres": "timescale/timescaledb:2.19.3-pg15"}

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._containers: dict[str, Any] = {}
        self._addresses: dict[str, str] = {}

    def require(self, name: str) -> str:
        if name in self._addresses:
            return self._addresses[name]
        external = {"kafka": self.settings.kafka_bootstrap_servers, "postgres": self.settings.database_url,
                    "triton": self.settings.triton_url, "prometheus": self.settings.prometheus_url}[name]
        if external:
            self._addresses[name] = external
        elif name == "kafka":
            from testcontainers.kafka import KafkaContainer

            container = self._containers[name] = KafkaContainer(self._IMAGES[name]).start()
            self._addresses[name] = container.get_bootstrap_server()
        elif name == "postgres":
            from testcontainers.postgres import PostgresContainer

            container = self._containers[name] = PostgresContainer(self._IMAGES[name], driver="psycopg").start()
            self._addresses[name] = container.get_connection_url()
        else:
            pytest.fail(f"--stack=docker provides kafka and postgres only; for {name} use --stack=local or set "
                        f"{'TRITON_URL' if name == 'triton' else 'PROMETHEUS_URL'}", pytrace=False)
        return self._addresses[name]

    def close(self) -> None:
        for container in self._containers.values():
            container.stop()


def check_docker() -> None:
    try:
        import docker
        import testcontainers  # noqa: F401 (only checking that the extra is installed)
    except ImportError as err:
        raise pytest.UsageError(f"--stack=docker needs the optional extra: pip install -e '.[docker]' ({err})") from err
    try:
        docker.from_env().ping()
    except Exception as err:
        raise pytest.UsageError(f"--stack=docker needs a running Docker engine, and none answered ({err}). "
                                "Use --stack=local (the default) to run the real services on this machine.") from err


def create_topic(admin: AdminClient, name: str, partitions: int, config: dict[str, str] | None = None) -> None:
    """Create a topic (replication 1) and wait until each of its partitions has a leader."""
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1,
                                            config=config or {})], operation_timeout=10)
    futures[name].result(timeout=30)
    _wait_for_leaders(admin, name, partitions)


def _wait_for_leaders(admin: AdminClient, topic: str, partitions: int, timeout_s: float = 15.0) -> None:
    # Creation returns before every partition has a leader; a client racing it sees UNKNOWN_TOPIC_OR_PART.
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        meta = admin.list_topics(topic, timeout=5).topics.get(topic)
        if meta is not None and meta.error is None and len(meta.partitions) == partitions \
                and all(p.leader >= 0 for p in meta.partitions.values()):
            return
        time.sleep(0.1)
    raise TimeoutError(f"topic {topic}: not every one of its {partitions} partitions has a leader after {timeout_s} s")


def consume_from_start(kafka: str, topic: str, *, expect: int, timeout_s: float = 30.0) -> list[Message]:
    """At least `expect` messages from the start of `topic` (all there are once that many arrived), read by a
    throw-away consumer group that commits nothing."""
    consumer = Consumer({"bootstrap.servers": kafka, "group.id": f"probe-{uuid.uuid4()}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        messages: list[Message] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = consumer.consume(1000, timeout=0.5)
            messages += [m for m in batch if m.error() is None]
            if len(messages) >= expect and not batch:
                break
        return messages
    finally:
        consumer.close()
