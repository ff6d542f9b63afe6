"""`vitalstream worker inference`: create the consumer's topics, serve /metrics, consume until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from prometheus_client import CollectorRegistry, start_http_server

from inference_consumer.consumer import ConsumerTopics, InferenceConsumer
from inference_consumer.metrics import InferenceMetrics
from vitalstream.config import Settings
from vitalstream.kafka_admin import admin_client, create_topics
from vitalstream.kafka_lag import register_lag_collector

log = logging.getLogger(__name__)


def run(settings: Settings, metrics_port: int, stop: threading.Event | None = None) -> None:
    """Block until stopped (SIGTERM/SIGINT, or `stop` when given). Replicas with one group id share partitions."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        def request_stop(signum: int, _frame: FrameType | None) -> None:
            log.info("stopping", extra={"signal": signal.Signals(signum).name})
            stop.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
    topics = ConsumerTopics.with_prefix(settings.inference_topic_prefix)
    # An auto-created topic would have one partition: make them with the registry's counts first.
    create_topics(admin_client(settings.kafka), topics.all())
    registry = CollectorRegistry()
    metrics = InferenceMetrics.create(registry)
    # The group's lag as the broker sees it (right even while this consumer is stuck), beside librdkafka's view.
    register_lag_collector(registry, settings.kafka, [settings.inference_group_id])
    start_http_server(metrics_port, registry=registry)
    log.info("inference metrics served", extra={"metrics_port": metrics_port})
    InferenceConsumer(settings, metrics).run(stop)
