"""Prometheus metrics of the API, served at /metrics: requests, latency, ingested readings, live-event streams.

Names are a public API (dashboards and alerts use them); labels never hold a user id or a raw path, only the
route template ("/v1/users/{user_id}/summary"), so cardinality is bounded by the routes. Metrics live in one
object made by `ApiMetrics.create(registry)`, so each app (and each test) has a registry of its own.

With several uvicorn worker processes each has its own registry: scrape each worker, or run one per container.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PREFIX = "vitalstream_api"
#: Route template → the kind of item its body carries, for the ingest counter.
INGEST_ROUTES: dict[str, str] = {
    "/v1/readings/glucose": "glucose",
    "/v1/readings/bp": "blood_pressure",
    "/v1/readings/hba1c": "hba1c",
    "/v1/exercise": "exercise",
    "/v1/meals": "meal",
    "/v1/meals/photo": "meal_photo",
    "/api/v1/entries": "nightscout_entry",
    "/api/v1/entries.json": "nightscout_entry",
    "/api/v1/treatments": "nightscout_treatment",
    "/api/v1/treatments.json": "nightscout_treatment",
}
#: Ingest routes whose body is one item that is not JSON (a multipart photo upload): counted as one, never kept.
SINGLE_ITEM_ROUTES = frozenset({"/v1/meals/photo"})
UNMATCHED = "unmatched"
#: Request latencies span ~1 ms (cached reads) to the Kafka publish timeout.
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class ApiMetrics:
    registry: CollectorRegistry
    requests: Counter
    request_seconds: Histogram
    ingest_items: Counter
    sse_connections: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = PREFIX) -> ApiMetrics:
        return cls(
            registry=registry,
            requests=Counter(f"{prefix}_requests", "HTTP requests answered, by route template and status",
                             ["method", "route", "status"], registry=registry),
            request_seconds=Histogram(f"{prefix}_request_duration_seconds",
                                      "Time to answer a request (streams excluded), by route template",
                                      ["method", "route"], buckets=LATENCY_BUCKETS_S, registry=registry),
            ingest_items=Counter(f"{prefix}_ingest_readings",
                                 "Readings (and other items) sent to ingest routes, by kind and outcome: accepted, "
                                 "replayed (an Idempotency-Key seen before), rejected (4xx), failed (5xx)",
                                 ["kind", "outcome"], registry=registry),
            sse_connections=Gauge(f"{prefix}_sse_connections", "Open live-event (SSE) streams",
                                  registry=registry),
        )


def _items(body: bytes, key: str | None = None) -> int:
    """How many items a JSON body holds: a list's length, one for an object (or its `key`), 0 if unreadable."""
    try:
        value: Any = json.loads(body)
    except ValueError:
        return 0
    if isinstance(value, list):
        return len(value)
    if isinstance(value, dict):
        if key is not None and isinstance(value.get(key), int):
            return int(value[key])
        return 1
    return 0


def _outcome(status: int, replayed: bool) -> str:
    if status >= 500:
        return "failed"
    if status >= 400:
        return "rejected"
    return "replayed" if replayed else "accepted"


class MetricsMiddleware:
    """Outermost middleware: counts every answer (413 and 429 from inner middleware included)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        streaming = replayed = False
        request_body: list[bytes] = []
        response_body: list[bytes] = []
        # Known only after routing; ingest bodies are kept (they are size-limited) to count their items.
        is_ingest = scope["path"] in INGEST_ROUTES and scope["method"] in ("POST", "PUT")
        keep_body = is_ingest and scope["path"] not in SINGLE_ITEM_ROUTES

        async def receive_and_keep() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                request_body.append(message.get("body", b""))
            return message

        async def send_and_watch(message: Message) -> None:
            nonlocal status, streaming, replayed
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = dict(message.get("headers", []))
                streaming = headers.get(b"content-type", b"").startswith(b"text/event-stream")
                replayed = headers.get(b"idempotent-replayed") == b"true"
            elif message["type"] == "http.response.body" and is_ingest and status < 300:
                response_body.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive_and_keep if keep_body else receive, send_and_watch)
        finally:
            # Refused before routing (413, 429): an ingest path is its own template; others stay unnamed.
            route = getattr(scope.get("route"), "path", None) or (scope["path"] if is_ingest else UNMATCHED)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            if not streaming:
                self.metrics.request_seconds.labels(method, route).observe(time.perf_counter() - started)
            kind = INGEST_ROUTES.get(route)
            if kind is not None and is_ingest:
                if status < 300:
                    count = _items(b"".join(response_body), key="accepted")
                else:
                    count = _items(b"".join(request_body)) if keep_body else 1
                self.metrics.ingest_items.labels(kind, _outcome(status, replayed)).inc(count)


router = APIRouter(tags=["health"])


@router.get("/metrics", summary="Prometheus metrics of this process (text exposition format)",
            response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}},
                                                      "description": "Prometheus text format"}})
def metrics(request: Request) -> Response:
    api_metrics: ApiMetrics = request.app.state.metrics
    return Response(generate_latest(api_metrics.registry), media_type=CONTENT_TYPE_LATEST)
