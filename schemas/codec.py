"""Bytes ↔ events. JSON on the wire; decoding goes straight from bytes through the topic's TypeAdapter."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from schemas.events import Event
from schemas.topics import Topic


class ContractError(ValueError):
    """A message broke its contract. `problems` lists 'field: rule' lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def describe(error: ValidationError) -> list[str]:
    """One 'field.path: message' line per problem, the field named first."""
    lines = []
    for problem in error.errors(include_url=False):
        # Discriminated unions put the tag first in the path (e.g. ('glucose', 'value')); keep the field part.
        path = ".".join(str(p) for p in problem["loc"]) or "(event)"
        message = problem["msg"].removeprefix("Value error, ")
        lines.append(f"{path}: {message}")
    return lines


def encode(event: Event) -> bytes:
    """The event as UTF-8 JSON."""
    return event.model_dump_json().encode()


def decode(topic: Topic, data: bytes) -> Any:
    """Validate `data` against the topic's contract; raises ContractError naming each bad field."""
    if topic.payload is None:
        raise ValueError(f"topic {topic.name} carries raw bytes, not events")
    try:
        return topic.payload.validate_json(data)
    except ValidationError as error:
        raise ContractError(describe(error)) from error
