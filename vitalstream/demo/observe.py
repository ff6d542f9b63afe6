"""What the display shows, read where an operator would read it: Prometheus (rates, totals, targets), the
consumer-lag collector (the broker's view of each group), TimescaleDB (risk tiers), the alerts topic (the stream
worker's alerts for the demo's people) and the API (a few people's summaries, with their own tokens). Each source
may fail on its own; the snapshot says which.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from confluent_kafka import Consumer, KafkaException, TopicPartition
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError

from schemas.codec import ContractError, decode
from schemas.derived import Alert
from schemas.topics import ALERTS
from vitalstream.config import Settings
from vitalstream.demo.api_client import ApiClient, DemoError
from vitalstream.demo.drive import Tally
from vitalstream.demo.fleet import DemoUser, Path, sign_in
from vitalstream.kafka_lag import LAG_METRIC, ConsumerLagCollector

log = logging.getLogger(__name__)

TIERS = ("low", "moderate", "high", "urgent")
#: Prometheus' rate window: a few scrape intervals of the local stack (5 s).
RATE_WINDOW = "30s"
QUERIES = {
    "stored_per_s": f'sum(rate(vitalstream_streams_events_total{{outcome="stored"}}[{RATE_WINDOW}]))',
    "stored_total": 'sum(vitalstream_streams_events_total{outcome="stored"})',
    "ingested_per_s": f'sum(rate(vitalstream_api_ingest_readings_total{{outcome="accepted"}}[{RATE_WINDOW}]))',
    # A labelled counter has no series until its first increment: count that as 0.
    "dead_letters": "(sum(vitalstream_streams_dead_letters_total) or vector(0)) + (sum("
                    'vitalstream_inference_errors_total{reason!~"triton_unavailable|commit_failed"}) or vector(0))',
    "photos_analysed": "sum(vitalstream_inference_images_total)",
    "alerts_published": "sum(vitalstream_streams_alerts_total)",
}


@dataclass(frozen=True)
class AlertRow:
    occurred_at: datetime
    person: str
    kind: str
    message: str


@dataclass(frozen=True)
class PersonSummary:
    person: str
    tier: str | None
    glucose: str | None
    blood_pressure: str | None
    hba1c: str | None


@dataclass
class Snapshot:
    tally: Tally
    elapsed_s: float
    figures: dict[str, float] = field(default_factory=dict)
    targets: dict[str, bool] = field(default_factory=dict)
    lag: dict[str, int] = field(default_factory=dict)
    tiers: dict[str, int] = field(default_factory=dict)
    alerts_total: int = 0
    alerts: list[AlertRow] = field(default_factory=list)
    summaries: list[PersonSummary] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class AlertTail:
    """The alerts topic from a point in time on, without a consumer group (nothing is committed)."""

    def __init__(self, bootstrap_servers: str, user_ids: Sequence[str], since: datetime, keep: int = 5) -> None:
        self._users = set(user_ids)
        self._keep = keep
        self.count = 0
        self.recent: list[Alert] = []
        self._consumer = Consumer({"bootstrap.servers": bootstrap_servers, "group.id": "vitalstream-demo-display",
                                   "enable.auto.commit": False, "enable.auto.offset.store": False})
        since_ms = int(since.timestamp() * 1000)
        wanted = [TopicPartition(ALERTS.name, partition, since_ms) for partition in range(ALERTS.partitions)]
        self._consumer.assign(self._consumer.offsets_for_times(wanted, timeout=10.0))

    def poll(self) -> None:
        for message in self._consumer.consume(num_messages=1000, timeout=0.1):
            value = message.value()
            if message.error() is not None or value is None:
                continue
            try:
                alert = decode(ALERTS, value)
            except ContractError:
                continue
            if isinstance(alert, Alert) and alert.user_id in self._users:
                self.count += 1
                self.recent = [alert, *self.recent][: self._keep]

    def close(self) -> None:
        self._consumer.close()


class Observer:
    def __init__(self, settings: Settings, fleet: Sequence[DemoUser], api: ApiClient, groups: Sequence[str],
                 since: datetime, featured: int = 3) -> None:
        self.settings = settings
        self.fleet = list(fleet)
        self.api = api
        self._labels = {user.user_id: user.label for user in fleet}
        self._ids = list(self._labels)
        # One person per path first, so the summaries show every way in.
        by_path = [next((u for u in fleet if u.path is p), None) for p in (Path.API, Path.NIGHTSCOUT, Path.KAFKA)]
        chosen = [u for u in by_path if u is not None]
        self.featured = (chosen + [u for u in fleet if u not in chosen])[:featured]
        self._prometheus = httpx.Client(base_url=settings.prometheus, timeout=5.0)
        self._engine: Engine = create_engine(settings.database, pool_size=1, max_overflow=0,
                                             connect_args={"connect_timeout": 5})
        self._lag: ConsumerLagCollector | None = ConsumerLagCollector(settings.kafka, list(groups))
        self._alerts = AlertTail(settings.kafka, self._ids, since)

    def snapshot(self, tally: Tally, elapsed_s: float) -> Snapshot:
        snap = Snapshot(tally=tally, elapsed_s=elapsed_s)
        self._read_prometheus(snap)
        self._read_lag(snap)
        self._read_database(snap)
        self._read_alerts(snap)
        self._read_summaries(snap)
        return snap

    def close(self) -> None:
        self._prometheus.close()
        self._engine.dispose()
        self._alerts.close()
        # Its admin client goes with it; kept, it would print connection errors once the stack stops.
        self._lag = None

    # -- sources ------------------------------------------------------------------------------------------
    def _query(self, promql: str) -> list[dict[str, Any]]:
        response = self._prometheus.get("/api/v1/query", params={"query": promql})
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def _read_prometheus(self, snap: Snapshot) -> None:
        try:
            for name, promql in QUERIES.items():
                result = self._query(promql)
                if result:
                    snap.figures[name] = float(result[0]["value"][1])
            for series in self._query("up"):
                job = series["metric"].get("job", "?")
                snap.targets[job] = snap.targets.get(job, True) and series["value"][1] == "1"
        except (httpx.HTTPError, KeyError, ValueError) as error:
            snap.problems.append(f"Prometheus at {self.settings.prometheus}: {error}")

    def _read_lag(self, snap: Snapshot) -> None:
        if self._lag is None:
            return
        try:
            for family in self._lag.collect():
                if family.name != LAG_METRIC:
                    continue
                for sample in family.samples:
                    group = sample.labels["group"]
                    snap.lag[group] = snap.lag.get(group, 0) + int(sample.value)
        except Exception as error:  # the collector logs broker trouble itself; the display only says so
            snap.problems.append(f"consumer lag from {self.settings.kafka}: {error}")

    def _read_database(self, snap: Snapshot) -> None:
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(text(
                    "SELECT tier, count(*) FROM (SELECT DISTINCT ON (user_id) user_id, tier FROM risk_tiers "
                    "WHERE user_id = ANY(:ids) ORDER BY user_id, as_of DESC) AS newest GROUP BY tier"),
                    {"ids": self._ids})
                snap.tiers = {str(tier): int(count) for tier, count in rows}
        except SQLAlchemyError as error:
            snap.problems.append(f"TimescaleDB: {type(error).__name__}: {str(error).splitlines()[0]}")

    def _read_alerts(self, snap: Snapshot) -> None:
        try:
            self._alerts.poll()
        except KafkaException as error:
            snap.problems.append(f"alerts topic at {self.settings.kafka}: {error}")
        snap.alerts_total = self._alerts.count
        snap.alerts = [AlertRow(alert.occurred_at, self._labels.get(alert.user_id, alert.user_id), alert.kind.value,
                                alert.message) for alert in self._alerts.recent]

    def _read_summaries(self, snap: Snapshot) -> None:
        for user in self.featured:
            try:
                response = self.api.send("GET", "/v1/me/summary", headers=user.bearer())
                if response.status_code == 401:  # access tokens live 15 minutes
                    user.access_token = sign_in(self.api, user.email)
                    response = self.api.send("GET", "/v1/me/summary", headers=user.bearer())
                response.raise_for_status()
                snap.summaries.append(_summary(user.label, response.json()))
            except (DemoError, httpx.HTTPError) as error:
                snap.problems.append(f"API summary of person {user.label}: {error}")


def _summary(label: str, body: dict[str, Any]) -> PersonSummary:
    tier = (body.get("risk_tier") or {}).get("tier")
    glucose = body.get("glucose")
    bp = body.get("blood_pressure")
    hba1c = body.get("hba1c")
    return PersonSummary(
        person=label,
        tier=tier,
        glucose=None if glucose is None else
        " ".join(filter(None, (f"{glucose['glucose_mg_dl']:.0f} mg/dL", _arrow(glucose.get("trend")),
                               f"({glucose['range'].replace('_', ' ')})"))),
        blood_pressure=None if bp is None else
        f"{bp['systolic_mmhg']:.0f}/{bp['diastolic_mmhg']:.0f} mmHg "
        f"({'hypertensive crisis' if bp.get('crisis') else bp['category'].replace('_', ' ')})",
        hba1c=None if hba1c is None else f"{hba1c['hba1c_pct']:.1f} % ({hba1c['category'].replace('_', ' ')})",
    )


_ARROWS = {"DoubleUp": "⇈", "SingleUp": "↑", "FortyFiveUp": "↗", "Flat": "→", "FortyFiveDown": "↘",
           "SingleDown": "↓", "DoubleDown": "⇊"}


def _arrow(trend: str | None) -> str:
    return _ARROWS.get(trend or "", "")
