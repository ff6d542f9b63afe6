"""Run the stream worker: create its topics, serve /metrics, start Faust, until SIGTERM or SIGINT."""

from __future__ import annotations

import logging

import faust
from prometheus_client import CollectorRegistry, start_http_server

from storage.sink import Sink
from streams.app import WORKER_TOPICS, create_app, prefixed
from streams.retention import start_retention
from vitalstream.config import Settings
from vitalstream.kafka_admin import MAX_REPLICATION_FACTOR, admin_client, create_topics
from vitalstream.kafka_lag import register_lag_collector

log = logging.getLogger(__name__)


def run(settings: Settings, metrics_port: int) -> None:
    """Block until the worker stops. Several workers with the same app id share the partitions."""
    from streams.telemetry import StreamsMetrics

    admin = admin_client(settings.kafka)
    # Source topics must exist with the registry's partition counts before Faust subscribes: an
    # auto-created topic has one partition and Faust then stops with PartitionsMismatch.
    create_topics(admin, [prefixed(t, settings.streams_topic_prefix) for t in WORKER_TOPICS])
    brokers = len(admin.list_topics(timeout=30).brokers)
    registry = CollectorRegistry()
    metrics = StreamsMetrics.create(registry)
    # The broker's view of the group's lag keeps growing while this worker is stuck, which its own figures cannot.
    register_lag_collector(registry, settings.kafka, [settings.streams_app_id])
    start_http_server(metrics_port, registry=registry)
    sink = Sink.from_url(settings.database)
    streams = create_app(settings, sink=sink, metrics=metrics,
                         replication_factor=min(MAX_REPLICATION_FACTOR, max(brokers, 1)))
    # Faust creates only the last level of its data directory.
    streams.app.conf.datadir.mkdir(parents=True, exist_ok=True)
    log.info("stream worker starting", extra={"app_id": settings.streams_app_id, "metrics_port": metrics_port,
                                               "topics": [streams.topics.readings.name, streams.topics.meals.name,
                                                          streams.topics.meal_analyses.name,
                                                          streams.topics.profiles.name]})
    worker = faust.Worker(streams.app, loglevel=settings.log_level, override_logging=False, quiet=True,
                          redirect_stdouts=False)
    # Faust's start-up spinner writes terminal escapes to stdout, where our JSON log lines go.
    worker.spinner = None
    retention = start_retention(settings)
    try:
        worker.execute_from_commandline()
    finally:
        if retention is not None:
            retention.set()
        sink.close()
