"""Messages in and out of the worker, as plain data, and how a message becomes an event or a dead letter.

The worker decodes bytes itself (the Faust topics are raw) so that a poison message is a value to route,
not an exception inside the consumer. A dead letter keeps the original key and bytes; the headers say why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from schemas.codec import ContractError, decode
from schemas.topics import Topic

Headers = list[tuple[str, bytes]]
#: Longest error text kept in a dead letter's `error` header.
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True, slots=True)
class InMessage:
    """One consumed Kafka message."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_s: float
    headers: Headers = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One message to publish."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers = field(default_factory=list)


class DeadLetterReason(StrEnum):
    UNDECODABLE = "undecodable"  # not JSON, or no value at all
    SCHEMA_INVALID = "schema_invalid"  # wrong or missing fields, wrong types, unknown event type
    OUT_OF_RANGE = "out_of_range"  # a value outside its physiological or temporal bounds
    KEY_MISMATCH = "key_mismatch"  # the message key is not the event's user id (it would land on another worker)
    UNKNOWN_TOPIC = "unknown_topic"
    STORAGE_REJECTED = "storage_rejected"  # valid by the contract, but the database refuses to store it


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message: InMessage
    reason: DeadLetterReason
    error: str

    def to_message(self, dead_letter_topic: str) -> OutMessage:
        source = self.message
        return OutMessage(
            topic=dead_letter_topic,
            key=source.key,
            value=source.value,
            headers=[
                ("reason", self.reason.value.encode()),
                ("error", self.error[:MAX_ERROR_CHARS].encode()),
                ("source_topic", source.topic.encode()),
                ("source_partition", str(source.partition).encode()),
                ("source_offset", str(source.offset).encode()),
            ],
        )


_BOUND_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})
# Our own validators (schemas.events) word range and consistency problems like this.
_RANGE_WORDS = ("must be within", "later than received_at", "must be lower than")


def classify(error: ContractError) -> DeadLetterReason:
    """The reason for a contract failure, from the first problem pydantic reported."""
    cause = error.__cause__
    if not isinstance(cause, ValidationError):
        return DeadLetterReason.SCHEMA_INVALID
    problems: Sequence[Any] = cause.errors(include_url=False)
    kinds = {p["type"] for p in problems}
    if kinds & {"json_invalid", "json_type"}:
        return DeadLetterReason.UNDECODABLE
    for problem in problems:
        if problem["type"] in _BOUND_ERRORS:
            return DeadLetterReason.OUT_OF_RANGE
        if problem["type"] == "value_error" and any(w in str(problem["msg"]) for w in _RANGE_WORDS):
            return DeadLetterReason.OUT_OF_RANGE
    return DeadLetterReason.SCHEMA_INVALID


def decode_message(topic: Topic, message: InMessage) -> Any:
    """The message's event, validated by the topic's contract and keyed by its user; or a DeadLetter."""
    if message.value is None:
        return DeadLetter(message, DeadLetterReason.UNDECODABLE, "value: missing (null message)")
    try:
        event = decode(topic, message.value)
    except ContractError as error:
        return DeadLetter(message, classify(error), str(error))
    user_id = getattr(event, "user_id", None)
    if user_id is None or message.key != user_id.encode():
        return DeadLetter(
            message, DeadLetterReason.KEY_MISMATCH,
            f"key: {message.key!r} is not the user_id {user_id!r}; topics are keyed by user_id",
        )
    return event
