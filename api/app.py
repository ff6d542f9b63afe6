"""The FastAPI application: `create_app(settings)`. Connections open in the lifespan, never at import time.

Example:
    uvicorn --factory api.app:create_app     (or: vitalstream api --port 38080)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka.admin import AdminClient
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from api import errors
from api.feed_listener import FeedListener, libpq_url
from api.metrics import ApiMetrics, MetricsMiddleware
from api.metrics import router as metrics_router
from api.middleware import BodySizeLimit, RateLimit
from api.publisher import Publisher, producer_config
from api.ratelimit import TokenBuckets
from api.routes import (
    agp,
    auth,
    devices,
    events,
    grants,
    health,
    ingest,
    nightscout,
    photos,
    profile,
    rankings,
    readings,
    results,
)
from api.security import token_issuer
from producers.metrics import ProducerMetrics
from storage.accounts import purge_expired
from storage.feed import purge_feed
from storage.rankings import Distributions
from vitalstream import __version__
from vitalstream.config import Settings, get_settings
from vitalstream.object_store import object_store

log = logging.getLogger(__name__)

#: How often expired idempotency keys, event-id records and old live events are deleted.
PURGE_INTERVAL_S = 3600.0
#: Live events (user_feed rows) older than this are deleted; a client away longer starts afresh.
FEED_RETENTION = timedelta(days=30)
#: How long a rankings snapshot answers before it is reloaded (storage.rankings: the staleness bound).
RANKINGS_MAX_AGE_S = 60.0


def make_engine(settings: Settings) -> Engine:
    # Ingest holds a connection while Kafka acknowledges a batch, so waiting for one may take a publish timeout.
    return create_engine(settings.database, pool_pre_ping=True, pool_size=10, max_overflow=10,
                         pool_timeout=settings.publish_timeout_s + 5, connect_args={"connect_timeout": 5})


def _purge_once(engine: Engine) -> None:
    try:
        now = datetime.now(UTC)
        with engine.begin() as connection:
            removed = purge_expired(connection, now)
            events_removed = purge_feed(connection, now - FEED_RETENTION)
        if removed or events_removed:
            log.info("expired idempotency records and old live events purged",
                     extra={"rows": removed, "feed_rows": events_removed})
    except SQLAlchemyError as error:
        log.warning("purging expired idempotency records failed", extra={"error": str(error)})


async def _purge_periodically(engine: Engine) -> None:
    while True:
        await run_in_threadpool(_purge_once, engine)
        await asyncio.sleep(PURGE_INTERVAL_S)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.issuer = token_issuer(settings)
    app.state.engine = engine = make_engine(settings)
    app.state.publisher = publisher = Publisher(producer_config(settings), settings.publish_timeout_s,
                                                metrics=app.state.producer_metrics)
    # With a logger, librdkafka's connection complaints become JSON log lines instead of raw stderr.
    admin_config: dict[str, Any] = {"bootstrap.servers": settings.kafka, "logger": log}
    app.state.kafka_admin = AdminClient(admin_config)
    app.state.rankings = Distributions(engine, max_age_s=RANKINGS_MAX_AGE_S)
    app.state.feed_listener = listener = FeedListener(libpq_url(settings.database))
    app.state.object_store = object_store(settings)
    purge = asyncio.create_task(_purge_periodically(engine))
    listening = asyncio.create_task(listener.run())
    try:
        yield
    finally:
        purge.cancel()
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await run_in_threadpool(publisher.close)
        engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API for `settings` (default: from the environment); tests pass their own."""
    app = FastAPI(
        title="VitalStream API",
        version=__version__,
        summary="Glucose, blood pressure, activity and meals in; Nightscout-compatible uploads.",
        lifespan=lifespan,
    )
    if settings is not None:
        # Routes read settings through the get_settings dependency; make them see these.
        app.dependency_overrides[get_settings] = lambda: settings
    settings = settings or get_settings()
    app.state.settings = settings
    app.state.metrics = metrics = ApiMetrics.create(CollectorRegistry())
    # Made here, once per app, beside the API's own: the lifespan may run more than once (tests).
    app.state.producer_metrics = ProducerMetrics.create(metrics.registry)
    errors.install(app)
    for module in (health, auth, devices, grants, ingest, photos, nightscout):
        app.include_router(module.router)
    app.include_router(metrics_router)
    # Each results module serves /v1/me/… and the same handlers under /v1/users/{user_id}/… (api.access).
    for shared in (results, readings, agp, rankings, events, profile):
        for router in shared.routers:
            app.include_router(router)
    # Added innermost first: CORS outermost, so browsers can read the 429 and 413 answers too.
    # The photo route alone takes bodies up to a photo's size (and refuses larger ones as early as the others).
    app.add_middleware(BodySizeLimit, max_body_bytes=settings.max_body_bytes,
                       route_limits={photos.PATH: photos.body_limit_bytes(settings)})
    app.add_middleware(RateLimit, buckets=TokenBuckets(settings.rate_limit_per_s, settings.rate_limit_burst))
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=settings.cors_origins, allow_methods=["*"],
                           allow_headers=["*"], expose_headers=["Retry-After", "Idempotent-Replayed"],
                           allow_credentials=False)  # bearer tokens travel in headers, never cookies
    # Outermost, so refusals by the middleware above are counted too.
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
