"""Live events over a real HTTP server: rows appended to user_feed arrive at once (LISTEN/NOTIFY), a reconnect
with Last-Event-ID gets only newer ones, a replayed event is not sent twice, and streams are counted."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from api.app import create_app
from storage.feed import append_feed
from tests.api.conftest import Account, AccountFactory
from tests.api.live import SseEvent, serve, sse_events
from vitalstream.config import Settings

#: Well below the streams' 30 s poll: an event that arrives in time came by NOTIFY.
READ_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def live(api_settings: Settings) -> Iterator[str]:
    with serve(create_app(api_settings)) as base_url:
        yield base_url


@pytest.fixture
def http(live: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live, timeout=httpx.Timeout(READ_TIMEOUT_S)) as client:
        yield client


def feed_row(user_id: str, kind: str = "alert", **payload: Any) -> dict[str, Any]:
    return {"user_id": user_id, "kind": kind, "payload": {"message": "test", **payload},
            "occurred_at": datetime.now(UTC), "source_event_id": uuid.uuid4()}


def append(engine: Engine, *rows: dict[str, Any]) -> int:
    with engine.begin() as connection:
        return append_feed(connection, list(rows))


def next_event(events: Iterator[SseEvent]) -> SseEvent:
    """The next event with an id (skipping the greeting and keep-alive comments)."""
    for event in events:
        if event.id is not None:
            return event
    raise AssertionError("the stream ended")


def test_events_arrive_and_a_reconnect_resumes_after_last_event_id(http: httpx.Client, account: Account,
                                                                   account_factory: AccountFactory,
                                                                   engine: Engine) -> None:
    first, second, third = (feed_row(account.user_id, n=n) for n in range(3))
    with http.stream("GET", "/v1/me/events", headers=account.auth) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
        greeting = next(events)
        assert greeting.comments == ["connected"] and greeting.retry == 3000
        append(engine, first, second)
        got = [next_event(events), next_event(events)]
    assert [e.json["payload"]["n"] for e in got] == [0, 1]
    assert [e.event for e in got] == ["alert", "alert"]
    assert int(got[0].id or 0) < int(got[1].id or 0)
    assert got[0].json["id"] == int(got[0].id or 0) and got[0].json["kind"] == "alert"

    # While away: a new event, a replay of one already sent (same source id), and someone else's event.
    assert append(engine, third, dict(first), feed_row(account_factory().user_id)) == 2
    with http.stream("GET", "/v1/me/events", headers=account.auth | {"Last-Event-ID": got[0].id or ""}) as response:
        events = sse_events(response)
        resumed = [next_event(events), next_event(events)]
        append(engine, feed_row(account.user_id, kind="risk_tier_changed", n=99))  # a sentinel: nothing before it
        sentinel = next_event(events)
    assert [e.json["payload"]["n"] for e in resumed] == [1, 2]
    assert resumed[0].id == got[1].id
    assert (sentinel.event, sentinel.json["payload"]["n"]) == ("risk_tier_changed", 99)


def test_after_zero_replays_the_stored_history(http: httpx.Client, account: Account, engine: Engine) -> None:
    append(engine, *(feed_row(account.user_id, kind="meal_analysis", n=n) for n in range(3)))
    with http.stream("GET", "/v1/me/events", params={"after": 0}, headers=account.auth) as response:
        events = sse_events(response)
        history = [next_event(events) for _ in range(3)]
    assert [(e.event, e.json["payload"]["n"]) for e in history] == [("meal_analysis", n) for n in range(3)]


def test_a_clinician_streams_a_patient_only_with_a_grant(http: httpx.Client, account: Account,
                                                         account_factory: AccountFactory, engine: Engine) -> None:
    clinician = account_factory("clinician")
    path = f"/v1/users/{account.user_id}/events"
    assert http.get(path, headers=clinician.auth).status_code == 404
    assert http.get(path).status_code == 401
    http.post("/v1/me/grants", json={"clinician_email": clinician.email}, headers=account.auth)
    append(engine, feed_row(account.user_id, n=7))
    with http.stream("GET", path, params={"after": 0}, headers=clinician.auth) as response:
        events = sse_events(response)
        assert next_event(events).json["payload"]["n"] == 7


def test_a_bad_last_event_id_is_a_422(http: httpx.Client, account: Account) -> None:
    response = http.get("/v1/me/events", headers=account.auth | {"Last-Event-ID": "yesterday"})
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "header.Last-Event-ID"


def _open_streams(http: httpx.Client) -> float:
    text = http.get("/metrics").text
    match = re.search(r"^vitalstream_api_sse_connections (\S+)$", text, re.MULTILINE)
    assert match, text
    return float(match.group(1))


def test_open_streams_are_counted_and_a_client_leaving_is_noticed(http: httpx.Client, account: Account) -> None:
    before = _open_streams(http)
    with http.stream("GET", "/v1/me/events", headers=account.auth) as response:
        events = sse_events(response)  # kept: dropping the iterator closes the connection
        next(events)
        assert _open_streams(http) == before + 1
    deadline = time.monotonic() + 10  # uvicorn reports the disconnect at once
    while _open_streams(http) != before and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _open_streams(http) == before
