"""Decoding consumed messages: events, or dead letters with a reason and the original bytes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from schemas.codec import encode
from schemas.topics import READINGS, USER_PROFILES
from streams.messages import DeadLetter, DeadLetterReason, InMessage, decode_message
from tests.streams.factories import T0, bp, cgm


def message(value: bytes | None, key: bytes | None = b"u") -> InMessage:
    return InMessage(topic="t", partition=3, offset=42, key=key, value=value, timestamp_s=0.0)


def reason(value: bytes | None, key: bytes | None = b"u") -> DeadLetterReason:
    decoded = decode_message(READINGS, message(value, key))
    assert isinstance(decoded, DeadLetter), decoded
    return decoded.reason


def test_a_valid_event_decodes() -> None:
    reading = cgm("u", T0, 120.0)
    assert decode_message(READINGS, message(encode(reading))) == reading


@pytest.mark.parametrize(("value", "expected"), [
    (b"\x00\xff not json", DeadLetterReason.UNDECODABLE),
    (None, DeadLetterReason.UNDECODABLE),
    (b'{"type": "glucose"}', DeadLetterReason.SCHEMA_INVALID),
    (b'{"type": "weight", "kg": 80}', DeadLetterReason.SCHEMA_INVALID),
])
def test_poison_messages_are_classified(value: bytes | None, expected: DeadLetterReason) -> None:
    assert reason(value) is expected


def test_values_out_of_their_bounds_are_out_of_range() -> None:
    payload = json.loads(encode(cgm("u", T0, 120.0)))
    assert reason(json.dumps({**payload, "value": 5000.0}).encode()) is DeadLetterReason.OUT_OF_RANGE
    future = {**payload, "occurred_at": (T0 + timedelta(hours=2)).isoformat()}
    assert reason(json.dumps(future).encode()) is DeadLetterReason.OUT_OF_RANGE
    cuff = json.loads(encode(bp("u", T0, 120, 80)))
    assert reason(json.dumps({**cuff, "systolic_mmhg": 400}).encode()) is DeadLetterReason.OUT_OF_RANGE
    assert reason(json.dumps({**payload, "value": "120"}).encode()) is DeadLetterReason.SCHEMA_INVALID


def test_a_key_other_than_the_user_id_is_a_key_mismatch() -> None:
    reading = encode(cgm("u", T0, 120.0))
    assert reason(reading, key=b"someone-else") is DeadLetterReason.KEY_MISMATCH
    assert reason(reading, key=None) is DeadLetterReason.KEY_MISMATCH


def test_a_dead_letter_keeps_the_bytes_and_says_why_and_where_from() -> None:
    dead = decode_message(READINGS, message(b"nope"))
    assert isinstance(dead, DeadLetter)
    out = dead.to_message("dlq")
    headers = dict(out.headers)
    assert (out.topic, out.key, out.value) == ("dlq", b"u", b"nope")
    assert headers["reason"] == b"undecodable" and headers["error"].startswith(b"(event): Invalid JSON")
    assert (headers["source_topic"], headers["source_partition"], headers["source_offset"]) == (b"t", b"3", b"42")


def test_profiles_must_name_a_real_time_zone() -> None:
    good = (b'{"user_id": "u", "time_zone": "Asia/Seoul", "bp_guideline": "ksh_2018", '
            b'"updated_at": "2024-01-01T00:00:00Z"}')
    assert decode_message(USER_PROFILES, message(good)).time_zone == "Asia/Seoul"
    for zone in ("Mars/Olympus", "../../etc/passwd", ""):
        bad = good.replace(b"Asia/Seoul", zone.encode())
        dead = decode_message(USER_PROFILES, message(bad))
        assert isinstance(dead, DeadLetter) and "time_zone" in dead.error
    unknown_guideline = good.replace(b"ksh_2018", b"jnc7")
    assert isinstance(decode_message(USER_PROFILES, message(unknown_guideline)), DeadLetter)
