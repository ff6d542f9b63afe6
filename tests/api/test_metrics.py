"""/metrics: request counts by route template and status (never a user id), latency, ingested readings by kind
and outcome."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import ApiMetrics
from tests.api.conftest import Account, AppFactory


def _sample(client: TestClient, name: str, **labels: str) -> float:
    metrics: ApiMetrics = client.app.state.metrics  # type: ignore[attr-defined]
    return metrics.registry.get_sample_value(name, labels) or 0.0


def _glucose(n: int) -> list[dict[str, Any]]:
    at = datetime.now(UTC) - timedelta(minutes=30)
    return [{"occurred_at": (at + timedelta(minutes=i)).isoformat(), "unit": "mg/dL", "value": 100 + i,
             "kind": "cgm"} for i in range(n)]


def test_metrics_are_served_in_the_prometheus_format(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"vitalstream_api_requests", "vitalstream_api_request_duration_seconds", "vitalstream_api_ingest_readings",
            "vitalstream_api_sse_connections"} <= names


def test_requests_are_labelled_by_route_template_not_by_user(client: TestClient, account: Account) -> None:
    template = "/v1/users/{user_id}/summary"
    before = _sample(client, "vitalstream_api_requests_total", method="GET", route=template, status="200")
    unknown = _sample(client, "vitalstream_api_requests_total", method="GET", route="unmatched", status="404")
    client.get(f"/v1/users/{account.user_id}/summary", headers=account.auth)
    client.get(f"/no/such/{uuid.uuid4()}")

    assert _sample(client, "vitalstream_api_requests_total", method="GET", route=template, status="200") == before + 1
    assert _sample(client, "vitalstream_api_requests_total", method="GET", route="unmatched",
                   status="404") == unknown + 1
    assert _sample(client, "vitalstream_api_request_duration_seconds_count", method="GET", route=template) >= 1
    exposed = client.get("/metrics").text
    assert account.user_id not in exposed and "/no/such" not in exposed


def test_ingested_readings_are_counted_by_kind_and_outcome(client: TestClient, account: Account) -> None:
    def count(outcome: str) -> float:
        return _sample(client, "vitalstream_api_ingest_readings_total", kind="glucose", outcome=outcome)

    accepted, replayed, rejected = count("accepted"), count("replayed"), count("rejected")
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = _glucose(3)
    assert client.post("/v1/readings/glucose", json=body, headers=account.auth | key).status_code == 202
    assert client.post("/v1/readings/glucose", json=body, headers=account.auth | key).status_code == 202
    invalid = [{"occurred_at": "yesterday", "unit": "mg/dL", "value": 1, "kind": "cgm"}] * 2
    assert client.post("/v1/readings/glucose", json=invalid, headers=account.auth).status_code == 422

    assert (count("accepted"), count("replayed"), count("rejected")) == (accepted + 3, replayed + 3, rejected + 2)


def test_refusals_before_routing_are_counted_on_the_ingest_route(app_factory: AppFactory, account: Account) -> None:
    small = app_factory(max_body_bytes=200)
    response = small.post("/v1/readings/glucose", json=_glucose(5), headers=account.auth)
    assert response.status_code == 413
    assert _sample(small, "vitalstream_api_requests_total", method="POST", route="/v1/readings/glucose",
                   status="413") == 1
    assert _sample(small, "vitalstream_api_ingest_readings_total", kind="glucose", outcome="rejected") == 0


def test_each_app_has_its_own_registry() -> None:
    first, second = ApiMetrics.create(CollectorRegistry()), ApiMetrics.create(CollectorRegistry())
    first.sse_connections.inc()
    assert second.registry.get_sample_value("vitalstream_api_sse_connections") == 0
    assert first.registry.get_sample_value("vitalstream_api_sse_connections") == 1
