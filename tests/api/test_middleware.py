"""Body-size limit (declared and streamed bodies), rate limit per credential, CORS."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient
from starlette.types import Scope

from api.middleware import credential_key
from tests.api.conftest import PASSWORD, AppFactory, unique_email


def test_a_declared_oversize_body_is_refused_before_it_is_read(app_factory: AppFactory) -> None:
    small = app_factory(max_body_bytes=1000)
    response = small.post("/v1/readings/glucose", content=b"[" + b" " * 2000 + b"]",
                          headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert "1000 bytes" in response.json()["error"]["message"]


def test_a_streamed_oversize_body_is_cut_off(app_factory: AppFactory) -> None:
    small = app_factory(max_body_bytes=1000)

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for _ in range(20):
            yield b" " * 100

    response = small.post("/v1/auth/register", content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_a_body_within_the_limit_passes(app_factory: AppFactory) -> None:
    small = app_factory(max_body_bytes=1000)
    response = small.post("/v1/auth/register", json={"email": unique_email(), "password": PASSWORD})
    assert response.status_code == 201


def test_the_rate_limit_is_per_credential_with_retry_after(app_factory: AppFactory) -> None:
    strict = app_factory(rate_limit_per_s=0.5, rate_limit_burst=2)
    alice, bob = {"X-API-Key": "vsk_alice"}, {"X-API-Key": "vsk_bob"}
    answers = [strict.get("/v1/me", headers=alice).status_code for _ in range(3)]
    limited = strict.get("/v1/me", headers=alice)

    assert answers == [401, 401, 429]
    assert limited.headers["Retry-After"] == "2"  # one token at 0.5/s
    assert strict.get("/v1/me", headers=bob).status_code == 401  # bob's bucket is his own
    assert strict.get("/healthz", headers=alice).status_code == 200  # probes are never limited


def _scope(headers: list[tuple[bytes, bytes]], query: bytes = b"") -> Scope:
    return {"type": "http", "headers": headers, "query_string": query, "client": ("10.0.0.7", 5000)}


def test_buckets_are_keyed_by_credential_hash_or_client_address() -> None:
    bearer = credential_key(_scope([(b"authorization", b"Bearer abc")]))
    assert bearer.startswith("authorization:") and "abc" not in bearer
    assert credential_key(_scope([(b"x-api-key", b"k")])) != credential_key(_scope([(b"x-api-key", b"j")]))
    assert credential_key(_scope([], b"token=s3cret&count=2")).startswith("token:")
    assert credential_key(_scope([])) == "client:10.0.0.7"


def test_cors_allows_the_configured_origins_only(app_factory: AppFactory) -> None:
    browser_app = app_factory(cors_origins=["https://clinic.example.org"])
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    allowed = browser_app.options("/v1/readings/glucose", headers=preflight | {"Origin": "https://clinic.example.org"})
    other = browser_app.options("/v1/readings/glucose", headers=preflight | {"Origin": "https://evil.example"})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://clinic.example.org"
    assert "access-control-allow-origin" not in other.headers


def test_without_configured_origins_no_cors_headers_are_sent(client: TestClient) -> None:
    response = client.get("/healthz", headers={"Origin": "https://clinic.example.org"})
    assert "access-control-allow-origin" not in response.headers
