"""Why a meal event went to the dead-letter topic, and the headers that say so.

A dead letter keeps the original key and bytes; the headers are the streams worker's (reason, error,
source_topic, source_partition, source_offset) plus `consumer`, the group that gave up on it.
"""

from __future__ import annotations

from enum import StrEnum

#: Longest error text kept in a dead letter's `error` header.
MAX_ERROR_CHARS = 2000

Headers = list[tuple[str, str | bytes | None]]


class DeadLetterReason(StrEnum):
    SCHEMA_INVALID = "schema_invalid"  # not a MealLogged event (bad JSON, fields, types)
    MISSING_OBJECT = "missing_object"  # no object under the photo's key
    PHOTO_UNREADABLE = "photo_unreadable"  # the object store failed to read it (permissions, I/O)
    SIZE_MISMATCH = "size_mismatch"  # the object's size is not the reference's size_bytes
    HASH_MISMATCH = "hash_mismatch"  # the object's sha256 is not the reference's
    NOT_AN_IMAGE = "not_an_image"  # not a JPEG, PNG or WebP that decodes
    CONTENT_TYPE_MISMATCH = "content_type_mismatch"  # decodes, but as another format than content_type says
    DECOMPRESSION_BOMB = "decompression_bomb"  # more pixels than a photo has
    INFERENCE_FAILED = "inference_failed"  # Triton refused the request itself (not an outage)
    DEADLINE_EXCEEDED = "deadline_exceeded"  # not analysed within VITALSTREAM_INFERENCE_DEADLINE_S


def headers(reason: DeadLetterReason, error: str, topic: str, partition: int, offset: int,
            consumer: str) -> Headers:
    return [
        ("reason", reason.value.encode()),
        ("error", error[:MAX_ERROR_CHARS].encode()),
        ("source_topic", topic.encode()),
        ("source_partition", str(partition).encode()),
        ("source_offset", str(offset).encode()),
        ("consumer", consumer.encode()),
    ]
