"""API fixtures: the app against the real Kafka and TimescaleDB of the local stack, accounts, and a topic tail.

Every test signs up its own users (unique e-mail addresses), so tests share one app and one database safely,
and reads Kafka only from the offsets it started at, filtered by its own users' keys.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from confluent_kafka import Consumer, Message, TopicPartition
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine

from api.app import create_app
from schemas.codec import decode
from schemas.topics import MEALS, READINGS, TOPICS, Topic
from storage.migrate import upgrade
from vitalstream.config import Settings
from vitalstream.kafka_admin import admin_client, create_topics

PASSWORD = "correct horse battery staple"
JWT_SECRET = "test-only-jwt-secret-0123456789abcdef"


@pytest.fixture(scope="session")
def migrated_database(database_url: str) -> str:
    upgrade(database_url)
    return database_url


@pytest.fixture(scope="session")
def kafka_with_topics(kafka_bootstrap: str) -> str:
    create_topics(admin_client(kafka_bootstrap), TOPICS.values())
    return kafka_bootstrap


@pytest.fixture(scope="session")
def api_settings(migrated_database: str, kafka_with_topics: str) -> Settings:
    # A generous rate limit: tests share the one test client's address; the limiter has tests of its own.
    return Settings(database_url=migrated_database, kafka_bootstrap_servers=kafka_with_topics, jwt_secret=JWT_SECRET,
                    rate_limit_per_s=10_000, rate_limit_burst=100_000)


AppFactory = Callable[..., TestClient]


@pytest.fixture(scope="session")
def client(api_settings: Settings) -> Iterator[TestClient]:
    """The API with the session's settings, started once (lifespan run)."""
    with TestClient(create_app(api_settings)) as client:
        yield client


@pytest.fixture
def app_factory(api_settings: Settings) -> Iterator[AppFactory]:
    """`app_factory(**setting_overrides)` → a started TestClient of its own; stopped after the test."""
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        client = TestClient(create_app(api_settings.model_copy(update=overrides)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture(scope="session")
def engine(migrated_database: str) -> Iterator[Engine]:
    engine = create_engine(migrated_database)
    yield engine
    engine.dispose()


@dataclass
class Account:
    email: str
    password: str
    user_id: str
    access_token: str
    refresh_token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


AccountFactory = Callable[..., Account]


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.org"


def sign_up(client: TestClient, role: str = "user", email: str | None = None) -> Account:
    email = email or unique_email(role)
    registered = client.post("/v1/auth/register", json={"email": email, "password": PASSWORD, "role": role})
    assert registered.status_code == 201, registered.text
    tokens = client.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert tokens.status_code == 200, tokens.text
    return Account(email=email, password=PASSWORD, user_id=registered.json()["id"],
                   access_token=tokens.json()["access_token"], refresh_token=tokens.json()["refresh_token"])


@pytest.fixture
def account_factory(client: TestClient) -> AccountFactory:
    """`account_factory(role="user")` → a new, signed-in account."""
    return lambda role="user": sign_up(client, role)


@pytest.fixture
def account(account_factory: AccountFactory) -> Account:
    return account_factory()


@pytest.fixture
def device_key(client: TestClient, account: Account) -> str:
    """An API key of a CGM belonging to `account`."""
    created = client.post("/v1/devices", json={"name": "sensor", "kind": "cgm"}, headers=account.auth)
    assert created.status_code == 201, created.text
    api_key: str = created.json()["api_key"]
    return api_key


@dataclass
class TopicTail:
    """Messages a topic received after this object was made (the API answers only after Kafka has them)."""

    bootstrap: str
    topic: Topic
    start: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        consumer = self._consumer()
        try:
            partitions = consumer.list_topics(self.topic.name, timeout=10).topics[self.topic.name].partitions
            self.start = {p: consumer.get_watermark_offsets(TopicPartition(self.topic.name, p), timeout=10)[1]
                          for p in partitions}
        finally:
            consumer.close()

    def _consumer(self) -> Consumer:
        return Consumer({"bootstrap.servers": self.bootstrap, "group.id": f"api-test-{uuid.uuid4()}",
                         "enable.auto.commit": False})

    def messages(self, key: str, timeout_s: float = 20.0) -> list[Message]:
        """Every message keyed `key` between the start and the current end of each partition."""
        consumer = self._consumer()
        try:
            end = {p: consumer.get_watermark_offsets(TopicPartition(self.topic.name, p), timeout=10)[1]
                   for p in self.start}
            pending = {p for p in self.start if end[p] > self.start[p]}
            consumer.assign([TopicPartition(self.topic.name, p, self.start[p]) for p in pending])
            found: list[Message] = []
            deadline = time.monotonic() + timeout_s
            while pending and time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is None or message.error() is not None:
                    continue
                partition, offset = message.partition(), message.offset()
                assert partition is not None and offset is not None  # set on every consumed message
                if message.key() == key.encode():
                    found.append(message)
                if offset >= end[partition] - 1:
                    pending.discard(partition)
            assert not pending, f"could not read {self.topic.name} partitions {pending} to their end"
            return found
        finally:
            consumer.close()

    def events(self, key: str) -> list[Any]:
        """The messages keyed `key`, decoded with the topic's contract."""
        return [decode(self.topic, message.value() or b"") for message in self.messages(key)]


TailFactory = Callable[[Topic], TopicTail]


@pytest.fixture
def tail(kafka_with_topics: str) -> TailFactory:
    """`tail(READINGS)` starts watching a topic now."""
    return lambda topic: TopicTail(kafka_with_topics, topic)


@pytest.fixture
def readings_tail(tail: TailFactory) -> TopicTail:
    return tail(READINGS)


@pytest.fixture
def meals_tail(tail: TailFactory) -> TopicTail:
    return tail(MEALS)
