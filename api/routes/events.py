"""Live events (Server-Sent Events): alerts, risk-tier changes and meal analyses as the stream worker makes them.

Each event's `id:` is its user_feed row id. A client that reconnects sends it back as `Last-Event-ID` (browsers'
EventSource do so by themselves) and gets exactly the events after it, none twice. A new connection without one
starts at the newest event (pass `after=0` for the whole stored history). Idle connections get a comment line
every 15 s (FastAPI's keep-alive). When a client leaves, the stream ends: uvicorn reports the disconnect at once
(Starlette then cancels the stream); under a server that does not, the next keep-alive fails to send.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.access import SharedRoutes, SubjectDep
from api.deps import EngineDep
from api.feed_listener import FeedListener
from api.metrics import ApiMetrics
from storage.feed import FeedKind, FeedRow, feed_after, newest_feed_id

routes = SharedRoutes("events")
routers = routes.routers

#: Rows read per query; a client far behind gets them in batches without pause.
BATCH = 200
#: How often a stream reads the feed without a notification: seldom while LISTEN works, often while it does not.
POLL_LISTENING_S = 30.0
POLL_NOT_LISTENING_S = 2.0
#: How long a browser waits before reconnecting (sent as `retry:`).
RETRY_MS = 3000


class FeedEvent(BaseModel):
    """The `data:` of each event (JSON)."""

    id: int
    kind: FeedKind
    occurred_at: datetime
    payload: dict[str, Any] = Field(description="The alert, risk-tier change or meal analysis, as the worker made it.")


def _listener(request: Request) -> FeedListener:
    listener: FeedListener = request.app.state.feed_listener
    return listener


def _metrics(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.metrics
    return metrics


def _read(engine: Engine, user_id: str, after: int) -> list[FeedRow]:
    with engine.connect() as connection:
        return feed_after(connection, user_id, after, BATCH)


def _newest(engine: Engine, user_id: str) -> int:
    with engine.connect() as connection:
        return newest_feed_id(connection, user_id)


async def _wait(wake: asyncio.Event, timeout_s: float) -> None:
    """Until the feed may have grown, or the poll interval is over."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(wake.wait(), timeout=timeout_s)


@routes.get("/events", summary="Live events (Server-Sent Events): alerts, risk-tier changes, meal analyses; "
                               "resumes after Last-Event-ID", response_class=EventSourceResponse)
async def events(
    subject: SubjectDep, engine: EngineDep,
    listener: Annotated[FeedListener, Depends(_listener)], metrics: Annotated[ApiMetrics, Depends(_metrics)],
    last_event_id: Annotated[int | None, Header(alias="Last-Event-ID", ge=0, description=(
        "Resume after this event id (EventSource sends it when it reconnects)."))] = None,
    after: Annotated[int | None, Query(ge=0, description=(
        "Resume after this event id (for clients that cannot set headers; Last-Event-ID wins). 0: everything "
        "stored. Neither: only events from now on."))] = None,
) -> AsyncIterator[ServerSentEvent]:
    user_id = subject.user_id
    cursor = last_event_id if last_event_id is not None else after
    metrics.sse_connections.inc()
    try:
        with listener.subscribe(user_id) as wake:
            if cursor is None:
                cursor = await run_in_threadpool(_newest, engine, user_id)
            yield ServerSentEvent(comment="connected", retry=RETRY_MS)
            while True:
                wake.clear()
                rows = await run_in_threadpool(_read, engine, user_id, cursor)
                for row in rows:
                    data = FeedEvent(id=row.id, kind=row.kind, occurred_at=row.occurred_at, payload=row.payload)
                    yield ServerSentEvent(id=str(row.id), event=row.kind.value, data=data)
                    cursor = row.id
                if len(rows) == BATCH:
                    continue
                await _wait(wake, POLL_LISTENING_S if listener.listening else POLL_NOT_LISTENING_S)
    finally:
        metrics.sse_connections.dec()
