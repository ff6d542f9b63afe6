"""Property-based fuzzing of every operation in the OpenAPI document (schemathesis) against a real server: no
input, valid or not, may cause a 5xx. Bounded: 25 examples per operation. Also: every operation refuses an
oversized body with 413."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy import Engine

from api.app import create_app
from storage.accounts import Role, set_role
from tests.api.conftest import PASSWORD
from tests.api.live import serve
from vitalstream.config import Settings

EXAMPLES_PER_OPERATION = 25
#: Smaller than the default so the oversize test needs little memory; fuzzed bodies stay far below it.
MAX_BODY_BYTES = 256 * 1024
#: The photo route's own limit is this plus room for the form: kept under MAX_BODY_BYTES, so the one oversized
#: body below is over every operation's limit.
MAX_PHOTO_BYTES = 128 * 1024
STREAMS = r"/events$"


@dataclass(frozen=True)
class Credentials:
    """One user's credentials of every kind, and the headers that carry them for an operation."""

    user_id: str
    access_token: str
    nightscout_secret: str

    def headers_for(self, path: str) -> dict[str, str]:
        if path.startswith("/api/v1/"):  # Nightscout: the uploader's secret, hashed as uploaders send it
            return {"api-secret": hashlib.sha1(self.nightscout_secret.encode()).hexdigest()}
        return {"Authorization": f"Bearer {self.access_token}"}


@pytest.fixture(scope="module")
def server(api_settings: Settings) -> Iterator[str]:
    limits = {"max_body_bytes": MAX_BODY_BYTES, "max_photo_bytes": MAX_PHOTO_BYTES}
    with serve(create_app(api_settings.model_copy(update=limits))) as base_url:
        yield base_url


@pytest.fixture(scope="module")
def credentials(server: str, engine: Engine) -> Credentials:
    """An admin's: admins reach every patient route's database queries, whatever user id is fuzzed in."""
    email = f"fuzz-{uuid.uuid4().hex[:12]}@example.org"
    with httpx.Client(base_url=server) as http:
        user_id = http.post("/v1/auth/register", json={"email": email, "password": PASSWORD}).json()["id"]
        with engine.begin() as connection:
            set_role(connection, email, Role.ADMIN)
        token = http.post("/v1/auth/token", data={"username": email, "password": PASSWORD}).json()["access_token"]
        secret = http.post("/v1/nightscout/secret", headers={"Authorization": f"Bearer {token}"}).json()["secret"]
    return Credentials(user_id=user_id, access_token=token, nightscout_secret=secret)


# The document of the app the server runs (built without connecting to anything). Loaded at import time: the
# lazy pytest loader (schemathesis.pytest.from_fixture) does not work with pytest 9.
schema = schemathesis.openapi.from_dict(create_app().openapi())
_bounded = settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=list(HealthCheck), derandomize=True)


@schema.exclude(path_regex=STREAMS).parametrize()
@_bounded
def test_no_operation_answers_5xx(case: Any, server: str, credentials: Credentials) -> None:
    response = case.call(base_url=server, headers=credentials.headers_for(case.path), timeout=30)
    case.validate_response(response, checks=[not_a_server_error])


@schema.include(path_regex=STREAMS).parametrize()
@_bounded
def test_event_streams_answer_no_5xx(case: Any, server: str, credentials: Credentials) -> None:
    # A granted stream never ends: read the status line only.
    kwargs = case.as_transport_kwargs(base_url=server, headers=credentials.headers_for(case.path))
    with requests.request(**kwargs, stream=True, timeout=10) as response:
        assert response.status_code < 500, response.text if response.status_code != 200 else ""


def test_every_operation_with_a_body_refuses_an_oversized_one(server: str, credentials: Credentials) -> None:
    document = httpx.get(f"{server}/openapi.json").json()
    oversized = b"[" + b" " * MAX_BODY_BYTES + b"]"
    checked = 0
    with httpx.Client(base_url=server) as http:
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                if "requestBody" not in operation:
                    continue
                response = http.request(method.upper(), path.replace("{device_id}", "x"), content=oversized,
                                        headers=credentials.headers_for(path) | {"Content-Type": "application/json"})
                assert response.status_code == 413, (method, path, response.status_code)
                assert response.json()["error"]["code"] == "payload_too_large"
                checked += 1
    assert checked >= 10
