"""What the demo needs before its children start: the local stack (installed on first use), the schema, the topics.

Only services that are not running are started, and only those are stopped when the demo ends: a stack that was up
before the demo (`vitalstream stack up`, a test session) is left exactly as it was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from confluent_kafka import KafkaException
from sqlalchemy.exc import OperationalError

from stack import manager
from stack.base import StackError
from storage import migrate
from vitalstream.config import Settings
from vitalstream.demo.api_client import DemoError
from vitalstream.kafka_admin import TopicMismatchError, admin_client, create_topics

log = logging.getLogger(__name__)

Say = Callable[[str], None]


@dataclass
class StackUse:
    """Which services the demo started (and will stop), found running, or uses from elsewhere."""

    started: list[str] = field(default_factory=list)
    found_running: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)


def bring_up(settings: Settings, use: StackUse, say: Say) -> None:
    """Start (installing on first use) every local-stack service that is not running; Triton's install builds the
    meal-photo models (`vitalstream models build`). `use` is filled in first, so an interrupted start is undone."""
    for service in manager.status(settings).services:
        if service.state == "running":
            use.found_running.append(service.name)
        elif service.state == "external":
            use.external.append(service.name)
        else:
            use.started.append(service.name)
    if use.found_running:
        say(f"stack: {', '.join(use.found_running)} already running; the demo leaves them as they are")
    if use.external:
        say(f"stack: {', '.join(use.external)} external (from the environment); nothing started for them")
    if use.started:
        say(f"stack: starting {', '.join(use.started)} (the first run installs them: a few minutes)")
        try:
            result = manager.up(settings, use.started, progress=lambda message: say(f"stack: {message}"))
        except StackError as error:
            raise DemoError(f"the local stack could not start:\n{error}") from error
        for service in result.services:
            say(f"stack: {service.name} {service.note or service.state} ({service.address})")


def bring_down(settings: Settings, use: StackUse, say: Say) -> None:
    if use.started:
        say(f"stack: stopping {', '.join(use.started)} (the demo started them)")
        try:
            manager.down(settings, use.started, progress=lambda message: say(f"stack: {message}"))
        except StackError as error:
            say(f"stack: stopping failed: {error}")
    if use.found_running:
        say(f"stack: {', '.join(use.found_running)} left running, as the demo found them "
            "(`vitalstream stack down` stops them)")


def prepare(settings: Settings, say: Say) -> None:
    """Schema migrations (`vitalstream db upgrade`) and the registry's topics (`vitalstream topics create`)."""
    try:
        migrate.upgrade(settings.database)
    except OperationalError as error:
        raise DemoError(f"database at {settings.database}: {error.orig}") from error
    say("database: schema at head (vitalstream db upgrade)")
    try:
        outcomes = create_topics(admin_client(settings.kafka))
    except (TopicMismatchError, KafkaException) as error:
        raise DemoError(f"kafka at {settings.kafka}: {error}") from error
    created = [o.name for o in outcomes if o.outcome == "created"]
    say(f"kafka: {len(outcomes)} topics ready" + (f", created {', '.join(created)}" if created else "")
        + " (vitalstream topics create)")


def unscraped_ports(settings: Settings) -> list[int]:
    """The demo's ports missing from Prometheus' loaded configuration (one started with other port settings)."""
    wanted = {settings.api_port, settings.streams_metrics_port, settings.inference_metrics_port}
    try:
        response = httpx.get(f"{settings.prometheus}/api/v1/status/config", timeout=5.0)
        response.raise_for_status()
        loaded = str(response.json()["data"]["yaml"])
    except (httpx.HTTPError, KeyError, ValueError) as error:
        log.warning("could not read Prometheus' configuration", extra={"error": str(error)})
        return []
    return sorted(port for port in wanted if f":{port}" not in loaded)
