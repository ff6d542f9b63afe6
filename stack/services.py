"""The local stack's services, in start order (Prometheus last: it scrapes the others)."""

from __future__ import annotations

import importlib

from stack.base import Service
from vitalstream.config import Settings

#: name -> "module:Class"; imported lazily so one service's import cost is not paid by the others.
SERVICES: dict[str, str] = {
    "kafka": "stack.kafka:Kafka",
    "postgres": "stack.postgres:Postgres",
    "triton": "stack.triton:Triton",
    "prometheus": "stack.prometheus:Prometheus",
}


def service(name: str, settings: Settings) -> Service:
    """Build the named service."""
    try:
        module, cls = SERVICES[name].split(":")
    except KeyError:
        raise ValueError(f"unknown service {name!r}; known: {', '.join(SERVICES)}") from None
    built: Service = getattr(importlib.import_module(module), cls)(settings)
    return built
