"""Every service's metrics follow the naming rules and appear in monitoring/README.md's catalogue, and the
dashboards and alert rules only use catalogued metrics.

Each service's metrics object is built on a fresh CollectorRegistry, each labelled metric is given one child (so
its label names show up), and the registry is collected as Prometheus would scrape it. A metric added later
with, say, a user_id label, a `_ms` unit or no catalogue entry fails here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from api.metrics import ApiMetrics
from inference_consumer.metrics import InferenceMetrics
from producers.metrics import ProducerMetrics
from streams.telemetry import StreamsMetrics
from tests.monitoring.queries import README, family, metric_names, panel_queries, recorded_names, rule_expressions
from vitalstream.kafka_lag import GroupOffsets, lag_families

PREFIX = "vitalstream_"
#: Label names a metric may carry: all of them bounded by code or configuration, none naming a person.
ALLOWED_LABELS = frozenset({
    "method", "route", "status",  # HTTP: route templates, never raw paths
    "kind", "type", "source", "outcome", "reason", "tier",  # enums of the contracts
    "topic", "partition", "group", "agent",  # Kafka and worker structure
})
#: Histograms measure a base unit, or count items per operation (batch sizes).
HISTOGRAM_SUFFIXES = ("_seconds", "_bytes", "_size")
#: Units that have a base unit instead (seconds, bytes, ratio).
NON_BASE_UNITS = re.compile(r"_(ms|milliseconds|microseconds|us|minutes|hours|days|kb|kilobytes|mb|megabytes|"
                            r"percent|pct)(_|$)")
#: Series the rules and dashboards may use that no VitalStream service exports.
EXTERNAL_SERIES = frozenset({"up"})


@dataclass(frozen=True)
class Family:
    name: str  # as queried: counters with their _total
    type: str
    labels: frozenset[str]
    help: str
    service: str


def _with_children(metrics: object) -> None:
    """Give every labelled metric of a metrics object one child, so its label names are exported."""
    assert dataclasses.is_dataclass(metrics), f"{type(metrics).__name__}: metrics objects are dataclasses"
    for field in dataclasses.fields(metrics):
        metric = getattr(metrics, field.name)
        if isinstance(metric, MetricWrapperBase) and metric._labelnames:
            metric.labels(*("x" for _ in metric._labelnames))


def _api(registry: CollectorRegistry) -> None:
    _with_children(ApiMetrics.create(registry))


def _producer(registry: CollectorRegistry) -> None:
    _with_children(ProducerMetrics.create(registry))


def _streams(registry: CollectorRegistry) -> None:
    _with_children(StreamsMetrics.create(registry))


def _inference(registry: CollectorRegistry) -> None:
    metrics = InferenceMetrics.create(registry)
    _with_children(metrics)
    metrics.lag.update_from_statistics(json.dumps(
        {"topics": {"vitalstream.meals": {"partitions": {"0": {"consumer_lag": 3}}}}}))


class _LagSample(Collector):
    """The lag collector's families from offsets given here (the collector itself reads them from Kafka)."""

    def collect(self) -> Iterable[Metric]:
        return lag_families([GroupOffsets("g", {("t", 0): 5}, available=True)], {("t", 0): 8})


def _lag(registry: CollectorRegistry) -> None:
    registry.register(_LagSample())


SERVICES: dict[str, Callable[[CollectorRegistry], None]] = {
    "api": _api,
    "producers": _producer,
    "streams": _streams,
    "inference": _inference,
    "lag collector": _lag,
}


def families(service: str) -> list[Family]:
    registry = CollectorRegistry()
    SERVICES[service](registry)
    found = []
    for metric in registry.collect():
        samples = [s for s in metric.samples if not s.name.endswith("_created")]
        labels = frozenset(label for sample in samples for label in sample.labels) - {"le", "quantile"}
        name = f"{metric.name}_total" if metric.type == "counter" else metric.name
        found.append(Family(name, metric.type, labels, metric.documentation, service))
        assert samples, f"{service}: {name} exported no sample, so its labels cannot be checked"
    return found


ALL = [f for service in SERVICES for f in families(service)]


@dataclass(frozen=True)
class Entry:
    name: str
    type: str
    labels: frozenset[str]
    planned: bool


def catalogue() -> dict[str, Entry]:
    """The metric table of monitoring/README.md: | `name` | type | `label`, ... | unit | exported by | meaning |"""
    entries = {}
    for match in re.finditer(r"^\| `(vitalstream_\w+)` \| (\w+) \| ([^|]*) \| [^|]* \| ([^|]*) \|", README.read_text(),
                             flags=re.MULTILINE):
        name, kind, labels, exported_by = match.groups()
        entries[name] = Entry(name, kind, frozenset(re.findall(r"`(\w+)`", labels)), "planned" in exported_by)
    return entries


@pytest.mark.parametrize("metric", ALL, ids=lambda f: f.name)
def test_metric_follows_the_naming_rules(metric: Family) -> None:
    assert metric.name.startswith(PREFIX), f"{metric.name}: every metric name starts with {PREFIX}"
    assert re.fullmatch(r"[a-z][a-z0-9_]*", metric.name), f"{metric.name}: snake_case ASCII only"
    assert not NON_BASE_UNITS.search(metric.name), f"{metric.name}: use base units (seconds, bytes, ratio)"
    assert metric.help.strip(), f"{metric.name}: says what it measures in its help text"
    not_allowed = metric.labels - ALLOWED_LABELS
    assert not not_allowed, (f"{metric.name}: labels {sorted(not_allowed)} are not on the allow-list; labels must "
                             f"be low-cardinality and never identify a person (no user or device ids)")
    if metric.type == "counter":
        assert not metric.name.endswith("_total_total"), f"{metric.name}: prometheus_client adds _total itself"
    elif metric.type == "histogram":
        assert metric.name.endswith(HISTOGRAM_SUFFIXES), f"{metric.name}: a histogram ends in {HISTOGRAM_SUFFIXES}"
    elif metric.type == "gauge":
        assert not metric.name.endswith(("_total", "_count", "_sum", "_bucket")), \
            f"{metric.name}: a gauge must not take a counter's or histogram's suffix"
    if "timestamp" in metric.name:
        assert metric.name.endswith("_timestamp_seconds"), f"{metric.name}: timestamps are Unix seconds"


def test_no_two_services_export_the_same_name() -> None:
    seen: dict[str, str] = {}
    for metric in ALL:
        assert metric.name not in seen, f"{metric.name}: exported by both {seen[metric.name]} and {metric.service}"
        seen[metric.name] = metric.service


def test_label_allow_list_keeps_people_out() -> None:
    # The guard against a future `user_id` label is the allow-list itself: it must not admit one.
    assert not {name for name in ALLOWED_LABELS if re.search(r"user|device|email|patient|event", name)}


def test_every_exported_metric_is_catalogued_with_its_type_and_labels() -> None:
    entries = catalogue()
    problems = []
    for metric in ALL:
        entry = entries.get(metric.name)
        if entry is None:
            problems.append(f"{metric.name} ({metric.service}) is missing from monitoring/README.md's catalogue")
        elif (entry.type, entry.labels) != (metric.type, metric.labels):
            problems.append(f"{metric.name}: catalogued as {entry.type} {sorted(entry.labels)}, exported as "
                            f"{metric.type} {sorted(metric.labels)}")
        elif entry.planned:
            problems.append(f"{metric.name} is exported now: drop 'planned' from its catalogue row")
    assert not problems, "\n".join(problems)


def test_every_catalogued_metric_is_exported_unless_planned() -> None:
    exported = {metric.name for metric in ALL}
    missing = [e.name for e in catalogue().values() if not e.planned and e.name not in exported]
    assert not missing, f"catalogued in monitoring/README.md but exported by no service: {missing}"
    assert len(catalogue()) >= len(exported)


def _known_series() -> set[str]:
    return set(catalogue()) | recorded_names() | EXTERNAL_SERIES


def test_alert_and_recording_rules_use_only_catalogued_metrics() -> None:
    unknown = {name: sorted(family(n) for n in metric_names(expr) if family(n) not in _known_series())
               for name, expr in rule_expressions().items()}
    assert not {k: v for k, v in unknown.items() if v}


def test_dashboards_use_only_catalogued_metrics() -> None:
    unknown = {q.name: sorted(family(n) for n in metric_names(q.text) if family(n) not in _known_series())
               for q in panel_queries() if q.datasource_uid == "prometheus"}
    assert not {k: v for k, v in unknown.items() if v}


def test_metric_names_are_found_in_promql() -> None:
    expr = ('sum by (le, route) (rate(vitalstream_api_request_duration_seconds_bucket{status=~"5..", '
            'route="/v1/x"}[$__rate_interval])) / on(job) group_left(instance) up offset 5m > bool 0.5 '
            'and time() - vitalstream_x_timestamp_seconds')
    assert metric_names(expr) == {"vitalstream_api_request_duration_seconds_bucket", "up",
                                  "vitalstream_x_timestamp_seconds"}
