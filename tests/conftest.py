"""Shared fixtures: real services from the local stack, each started on first use, once per session.

`--stack=local` (default) uses `stack.manager` on this machine; `--stack=docker` uses testcontainers (the
optional `docker` extra) for Kafka and PostgreSQL. A variable such as KAFKA_BOOTSTRAP_SERVERS points a
fixture at an external service instead, and nothing is started for it.

Services this session starts are stopped when the last test session using the stack folder ends (parallel
workers share one stack); services that were already running, e.g. from `vitalstream stack up`, are left.
`--keep-stack` leaves everything running for faster reruns.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient

from stack.testing import DockerStack, LocalStack, StackProvider, TopicFactory, check_docker, create_topic
from vitalstream.config import Settings

#: Fixtures that need a real service: tests using them get the `stack` marker (deselect with -m "not stack").
STACK_FIXTURES = frozenset({"stack", "kafka_bootstrap", "prometheus_url", "database_url", "triton_url",
                            "topic_factory"})


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vitalstream")
    group.addoption("--stack", choices=("local", "docker"), default="local",
                    help="where real services come from: this machine's local stack (default) or Docker "
                         "containers via testcontainers (pip install -e '.[docker]'; Kafka and PostgreSQL only)")
    group.addoption("--keep-stack", action="store_true", default=False,
                    help="leave the services this session started running (faster reruns); "
                         "`vitalstream stack down` stops them")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--stack") == "docker":
        check_docker()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if STACK_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.stack)


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest) -> Iterator[StackProvider]:
    """The session's source of real services; `stack.require("kafka")` returns an address."""
    settings = Settings()
    provider: StackProvider
    if request.config.getoption("--stack") == "docker":
        provider = DockerStack(settings)
    else:
        provider = LocalStack(settings, keep=request.config.getoption("--keep-stack"), say=_terminal(request))
    yield provider
    provider.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: StackProvider) -> str:
    """bootstrap.servers of a real Kafka broker."""
    return stack.require("kafka")


@pytest.fixture(scope="session")
def prometheus_url(stack: StackProvider) -> str:
    """Base URL of a real Prometheus (scraping the local stack's targets)."""
    return stack.require("prometheus")


@pytest.fixture(scope="session")
def database_url(stack: StackProvider) -> str:
    """SQLAlchemy URL of a real PostgreSQL with TimescaleDB."""
    return stack.require("postgres")


@pytest.fixture(scope="session")
def triton_url(stack: StackProvider) -> str:
    """host:port of a real Triton server (protocol per TRITON_PROTOCOL)."""
    return stack.require("triton")


@pytest.fixture
def topic_factory(kafka_bootstrap: str, request: pytest.FixtureRequest) -> Iterator[TopicFactory]:
    """`topic_factory(partitions=3, config=None)` creates a uniquely named topic; deleted after the test."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    created: list[str] = []
    slug = re.sub(r"[^A-Za-z0-9-]+", "-", request.node.name).strip("-")[:80]

    def make(partitions: int = 3, config: dict[str, str] | None = None) -> str:
        name = f"test-{slug}-{uuid.uuid4().hex[:8]}"
        create_topic(admin, name, partitions, config)
        created.append(name)
        return name

    yield make
    if created:
        for future in admin.delete_topics(created, operation_timeout=10).values():
            future.result(timeout=30)


def _terminal(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Progress lines straight to the terminal, past output capture (a first-run install takes a minute)."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    reporter = request.config.pluginmanager.getplugin("terminalreporter")

    def say(message: str) -> None:
        if reporter is None or capture is None:
            return
        with capture.global_and_fixture_disabled():
            reporter.write_line(message)

    return say
