"""The stream worker's Prometheus metrics, declared together; names are a public API, labels never name users."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BATCH_SIZE_BUCKETS = (1, 5, 10, 50, 100, 250, 500, 1000, 2000, 5000, 10000)
_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class StreamsMetrics:
    events: Counter
    dead_letters: Counter
    batch_size: Histogram
    batch_seconds: Histogram
    db_write_seconds: Histogram
    db_retries: Counter
    reading_to_tier_seconds: Histogram
    assessment_errors: Counter
    alerts: Counter
    tier_changes: Counter
    assigned_partitions: Gauge
    last_reading: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry, prefix: str = "vitalstream_streams") -> StreamsMetrics:
        """All metrics, registered in `registry` (tests pass a fresh CollectorRegistry)."""
        return cls(
            events=Counter(f"{prefix}_events", "Messages handled, by event type and outcome "
                           "(stored: new row; duplicate: already stored, e.g. a replay; dead_letter).",
                           ["type", "outcome"], registry=registry),
            dead_letters=Counter(f"{prefix}_dead_letters", "Messages sent to the dead-letter topic, by reason.",
                                 ["reason"], registry=registry),
            batch_size=Histogram(f"{prefix}_batch_size", "Messages per batch (one database transaction).",
                                 ["agent"], buckets=_BATCH_SIZE_BUCKETS, registry=registry),
            batch_seconds=Histogram(f"{prefix}_batch_seconds", "Time to process one batch, end to end.",
                                    ["agent"], buckets=_SECONDS_BUCKETS, registry=registry),
            db_write_seconds=Histogram(f"{prefix}_db_write_seconds",
                                       "Time of one batch's database transaction (raw rows and derived rows).",
                                       buckets=_SECONDS_BUCKETS, registry=registry),
            db_retries=Counter(f"{prefix}_db_retries", "Database transactions retried after a transient error.",
                               registry=registry),
            reading_to_tier_seconds=Histogram(
                f"{prefix}_reading_to_tier_seconds",
                "From a reading's Kafka timestamp to its user's tier being assessed and stored.",
                buckets=_SECONDS_BUCKETS, registry=registry),
            assessment_errors=Counter(f"{prefix}_assessment_errors",
                                      "Users whose metrics could not be computed for a batch (rows still stored).",
                                      registry=registry),
            alerts=Counter(f"{prefix}_alerts", "Alerts published, by kind.", ["kind"], registry=registry),
            tier_changes=Counter(f"{prefix}_tier_changes", "Risk-tier changes published, by new tier.", ["tier"],
                                 registry=registry),
            assigned_partitions=Gauge(f"{prefix}_assigned_partitions",
                                      "Source-topic partitions (readings, meals, meal analyses, profiles) this worker "
                                      "owns now.",
                                      registry=registry),
            # Wall clock at storage, not occurred_at: back-filled imports must look neither silent nor fresh.
            last_reading=Gauge(f"{prefix}_last_reading_timestamp_seconds",
                               "Unix time the worker last stored a reading of this event type from this source.",
                               ["type", "source"], registry=registry),
        )
