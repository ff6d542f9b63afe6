"""The consumer's metrics: declared together in a registry of the caller's, lag read from librdkafka's statistics."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry

from inference_consumer.metrics import InferenceMetrics


def test_lag_comes_from_librdkafka_statistics_per_assigned_partition() -> None:
    registry = CollectorRegistry()
    metrics = InferenceMetrics.create(registry)
    statistics = {"name": "c#consumer-1", "type": "consumer", "topics": {"vitalstream.meals": {"partitions": {
        "0": {"partition": 0, "consumer_lag": 42, "committed_offset": 10},
        "1": {"partition": 1, "consumer_lag": -1},  # not known yet
        "-1": {"partition": -1, "consumer_lag": -1},  # librdkafka's unassigned placeholder
    }}}}
    metrics.lag.update_from_statistics(json.dumps(statistics))
    lag = "vitalstream_inference_consumer_lag"
    assert registry.get_sample_value(lag, {"topic": "vitalstream.meals", "partition": "0"}) == 42
    assert registry.get_sample_value(lag, {"topic": "vitalstream.meals", "partition": "1"}) is None
    metrics.lag.forget()
    assert registry.get_sample_value(lag, {"topic": "vitalstream.meals", "partition": "0"}) is None


def test_every_metric_is_named_under_one_prefix() -> None:
    registry = CollectorRegistry()
    metrics = InferenceMetrics.create(registry)
    metrics.images.inc(3)
    metrics.batch_size.observe(16)
    metrics.errors.labels("hash_mismatch").inc()
    assert registry.get_sample_value("vitalstream_inference_images_total") == 3
    assert registry.get_sample_value("vitalstream_inference_batch_size_bucket", {"le": "16.0"}) == 1
    assert registry.get_sample_value("vitalstream_inference_errors_total", {"reason": "hash_mismatch"}) == 1
    names = {family.name for family in registry.collect()}
    assert names and all(name.startswith("vitalstream_inference_") for name in names)
