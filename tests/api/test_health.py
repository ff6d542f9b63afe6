"""Probes: liveness always; readiness only with the database and Kafka (and its topics) reachable."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.conftest import AppFactory


def test_healthz_answers(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_the_database_and_kafka(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "kafka": "ok"}}


def test_readyz_names_what_is_unreachable(app_factory: AppFactory) -> None:
    cut_off = app_factory(kafka_bootstrap_servers="127.0.0.1:9",
                          database_url="postgresql+psycopg://postgres@127.0.0.1:9/vitalstream")
    response = cut_off.get("/readyz")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "not_ready"
    assert [(f["field"], f["rule"]) for f in error["fields"]] == [("database", "reachable"), ("kafka", "reachable")]
    assert cut_off.get("/healthz").status_code == 200  # alive, just not ready
