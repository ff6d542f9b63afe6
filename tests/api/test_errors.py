"""The one error shape, pinned: every failure the API can give has exactly this structure."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.errors import field_path
from tests.api.conftest import Account, AccountFactory, AppFactory


def assert_error_shape(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["error"]
    error: dict[str, Any] = body["error"]
    assert list(error) == ["code", "message", "fields"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    for problem in error["fields"]:
        assert list(problem) == ["field", "rule", "message"]
        assert all(isinstance(value, str) and value for value in problem.values())
    return error


def test_validation_errors(client: TestClient, account: Account) -> None:
    response = client.post("/v1/readings/glucose", json={"unit": "mg/dL", "value": 120}, headers=account.auth)
    error = assert_error_shape(response, 422, "validation_failed")
    assert {f["field"] for f in error["fields"]} == {"0.occurred_at", "0.kind"}
    assert error["message"].startswith("0.")  # the first problem, named


def test_malformed_json(client: TestClient, account: Account) -> None:
    response = client.post("/v1/readings/glucose", content=b"{not json", headers=account.auth |
                           {"Content-Type": "application/json"})
    assert_error_shape(response, 422, "validation_failed")


def test_unauthenticated(client: TestClient) -> None:
    assert_error_shape(client.get("/v1/devices"), 401, "unauthorized")


def test_forbidden(client: TestClient, account_factory: AccountFactory) -> None:
    alice, bob = account_factory(), account_factory()
    response = client.post("/v1/readings/glucose", headers=alice.auth, json={
        "occurred_at": "2026-01-01T08:00:00Z", "unit": "mg/dL", "value": 99, "kind": "cgm", "user_id": bob.user_id})
    assert_error_shape(response, 403, "forbidden")


def test_not_found(client: TestClient, account: Account) -> None:
    assert_error_shape(client.get("/no/such/route"), 404, "not_found")
    assert_error_shape(client.delete("/v1/devices/none", headers=account.auth), 404, "not_found")


def test_method_not_allowed(client: TestClient) -> None:
    assert_error_shape(client.get("/v1/readings/glucose"), 405, "method_not_allowed")


def test_conflict(client: TestClient, account: Account) -> None:
    response = client.post("/v1/auth/register", json={"email": account.email, "password": account.password})
    assert_error_shape(response, 409, "email_taken")


def test_payload_too_large(app_factory: AppFactory) -> None:
    small = app_factory(max_body_bytes=64)
    assert_error_shape(small.post("/v1/auth/register", content=b"x" * 65), 413, "payload_too_large")


def test_rate_limited(app_factory: AppFactory) -> None:
    strict = app_factory(rate_limit_per_s=0.01, rate_limit_burst=1)
    strict.get("/v1/me")
    assert_error_shape(strict.get("/v1/me"), 429, "rate_limited")


def test_service_unavailable(app_factory: AppFactory) -> None:
    assert_error_shape(app_factory(kafka_bootstrap_servers="127.0.0.1:9").get("/readyz"), 503, "not_ready")


@pytest.mark.parametrize(("location", "path"), [
    (("body", 3, "value"), "3.value"), (("body",), "body"), (("body", "email"), "email"),
    (("query", "count"), "query.count"), (("header", "idempotency-key"), "header.idempotency-key"),
])
def test_field_paths_are_dotted_and_drop_the_body_prefix(location: tuple[int | str, ...], path: str) -> None:
    assert field_path(location) == path
