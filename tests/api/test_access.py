"""Object-level authorization for every results route: /v1/me/… is always the caller's own data; under
/v1/users/{id}/… only the patient, a clinician they granted, or an admin gets an answer. Everyone else gets the
same 404 a user who does not exist gets."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from storage.accounts import Role, set_role
from tests.api.conftest import Account, AccountFactory, sign_up
from tests.api.images import encode
from tests.api.rows import Writer

PATIENTS = "/v1/users/{user_id}"
#: Path parameters other than user_id, filled in for the calls.
FILL = {"{metric}": "time_in_range"}
#: Streams never end, so the test client cannot read a granted one; tests/api/test_events.py does, over HTTP.
STREAMS = {"/events"}


def _paths(client: TestClient) -> set[str]:
    return set(client.app.openapi()["paths"])  # type: ignore[attr-defined]


def shared_suffixes(client: TestClient) -> list[str]:
    return sorted(_fill(path.removeprefix(PATIENTS)) for path in _paths(client) if path.startswith(PATIENTS + "/"))


def _fill(path: str) -> str:
    for name, value in FILL.items():
        path = path.replace(name, value)
    return path


def _comparable(response: httpx.Response) -> Any:
    if response.headers["content-type"].startswith("image/"):
        return response.content
    body = response.json()
    body.pop("population_as_of", None)  # a rankings snapshot may be reloaded between the two calls
    return body


@pytest.fixture
def patient(client: TestClient, account_factory: AccountFactory, engine: Engine) -> Iterator[Account]:
    """A patient with data behind every route (so each answers 200 when allowed)."""
    patient = account_factory()
    writer = Writer(engine, patient.user_id)
    now = datetime.now(UTC)
    writer.glucose([(now - timedelta(minutes=5 * i), 100.0 + i % 50) for i in range(60)])
    writer.blood_pressure([(now, 125, 80)])
    writer.hba1c([(now, 6.0)])
    writer.exercise([(now, 30.0)])
    writer.meals([(now, 40.0)])
    writer.glucose_metrics("14d", now)
    writer.daily_totals(now.date(), "UTC")
    writer.risk_tier(now, "low", [])
    writer.metric("time_in_range_14d_pct", 81.0)
    writer.profile("Europe/Berlin", "esc_esh_2018")
    yield patient


@pytest.fixture
def admin(client: TestClient, engine: Engine) -> Account:
    account = sign_up(client)
    with engine.begin() as connection:
        set_role(connection, account.email, Role.ADMIN)
    return sign_up_again(client, account)


def sign_up_again(client: TestClient, account: Account) -> Account:
    """New tokens for an account (its role is in the token)."""
    tokens = client.post("/v1/auth/token", data={"username": account.email, "password": account.password}).json()
    account.access_token, account.refresh_token = tokens["access_token"], tokens["refresh_token"]
    return account


def test_every_patient_route_mirrors_a_me_route(client: TestClient) -> None:
    paths = _paths(client)
    suffixes = [path.removeprefix(PATIENTS) for path in paths if path.startswith(PATIENTS + "/")]
    assert set(suffixes) == {"/summary", "/metrics/glucose", "/daily", "/weekly", "/agp", "/agp.png",
                             "/rankings/{metric}", "/events", "/profile", *(f"/readings/{kind}" for kind in
                                                                ("glucose", "bp", "hba1c", "exercise", "meals"))}
    assert all(f"/v1/me{suffix}" in paths for suffix in suffixes)


def test_unauthenticated_calls_are_401(client: TestClient, patient: Account) -> None:
    for suffix in shared_suffixes(client):
        for path in (f"/v1/me{suffix}", f"/v1/users/{patient.user_id}{suffix}"):
            response = client.get(path)
            assert response.status_code == 401, path
            assert response.json()["error"]["code"] == "unauthorized"
            bad = client.get(path, headers={"Authorization": "Bearer not-a-token"})
            assert bad.status_code == 401, path


def test_another_user_sees_nothing_of_the_patient(client: TestClient, patient: Account,
                                                  account_factory: AccountFactory) -> None:
    stranger = account_factory()
    for suffix in shared_suffixes(client):
        response = client.get(f"/v1/users/{patient.user_id}{suffix}", headers=stranger.auth)
        assert response.status_code == 404, suffix
        assert response.json()["error"]["message"] == f"no user {patient.user_id} whose data you may see"
    own = client.get("/v1/me/summary", headers=stranger.auth).json()
    assert own["user_id"] == stranger.user_id and own["glucose"] is None


def test_a_clinician_sees_a_patient_only_while_granted(client: TestClient, patient: Account,
                                                       account_factory: AccountFactory) -> None:
    clinician = account_factory("clinician")
    suffixes = shared_suffixes(client)
    for suffix in suffixes:
        assert client.get(f"/v1/users/{patient.user_id}{suffix}", headers=clinician.auth).status_code == 404

    client.post("/v1/me/grants", json={"clinician_email": clinician.email}, headers=patient.auth)
    for suffix in suffixes:
        if suffix in STREAMS:
            continue
        theirs = client.get(f"/v1/users/{patient.user_id}{suffix}", headers=clinician.auth)
        own = client.get(f"/v1/me{suffix}", headers=patient.auth)
        assert theirs.status_code == own.status_code == 200, (suffix, theirs.text)
        assert _comparable(theirs) == _comparable(own), suffix
    # The clinician's own /v1/me routes stay their own.
    assert client.get("/v1/me/summary", headers=clinician.auth).json()["user_id"] == clinician.user_id

    client.request("DELETE", "/v1/me/grants", json={"clinician_email": clinician.email}, headers=patient.auth)
    for suffix in suffixes:
        assert client.get(f"/v1/users/{patient.user_id}{suffix}", headers=clinician.auth).status_code == 404


def test_a_grant_to_one_clinician_is_not_a_grant_to_another(client: TestClient, patient: Account,
                                                            account_factory: AccountFactory) -> None:
    granted, other = account_factory("clinician"), account_factory("clinician")
    client.post("/v1/me/grants", json={"clinician_email": granted.email}, headers=patient.auth)
    assert client.get(f"/v1/users/{patient.user_id}/summary", headers=granted.auth).status_code == 200
    assert client.get(f"/v1/users/{patient.user_id}/summary", headers=other.auth).status_code == 404


def test_an_admin_reads_anyone_but_no_one_who_does_not_exist(client: TestClient, patient: Account,
                                                            admin: Account) -> None:
    for suffix in shared_suffixes(client):
        if suffix in STREAMS:
            continue
        response = client.get(f"/v1/users/{patient.user_id}{suffix}", headers=admin.auth)
        assert response.status_code == 200, (suffix, response.text)
    missing = client.get("/v1/users/00000000-0000-0000-0000-000000000000/summary", headers=admin.auth)
    assert missing.status_code == 404


def test_a_user_may_use_their_own_id(client: TestClient, patient: Account) -> None:
    own = client.get(f"/v1/users/{patient.user_id}/summary", headers=patient.auth)
    assert own.status_code == 200
    assert own.json() == client.get("/v1/me/summary", headers=patient.auth).json()


def test_unknown_and_other_users_get_the_same_answer(client: TestClient, patient: Account,
                                                     account_factory: AccountFactory) -> None:
    clinician = account_factory("clinician")
    real = client.get(f"/v1/users/{patient.user_id}/summary", headers=clinician.auth)
    fake = client.get("/v1/users/11111111-2222-3333-4444-555555555555/summary", headers=clinician.auth)
    assert real.status_code == fake.status_code == 404
    assert real.json()["error"]["code"] == fake.json()["error"]["code"] == "not_found"
    assert list(real.headers) == list(fake.headers)


def test_a_patient_route_reads_only(client: TestClient, patient: Account, admin: Account) -> None:
    # Only the patient changes their own data (the profile: PUT /v1/me/profile); even an admin only reads.
    for method in ("PUT", "POST", "PATCH", "DELETE"):
        for suffix in shared_suffixes(client):
            response = client.request(method, f"/v1/users/{patient.user_id}{suffix}", headers=admin.auth,
                                      json={"time_zone": "UTC", "bp_guideline": None})
            assert response.status_code == 405, (method, suffix)


def test_a_malformed_user_id_never_reaches_the_database(client: TestClient, admin: Account) -> None:
    # PostgreSQL text cannot hold NUL: sent to the database, this id would be a 500.
    response = client.get("/v1/users/ab%00cd/summary", headers=admin.auth)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "path.user_id"
    assert client.get(f"/v1/users/{'x' * 129}/summary", headers=admin.auth).status_code == 422


def _ingest_requests(owner: str) -> dict[str, dict[str, Any]]:
    """One request per ingest route, each naming `owner` as the user (httpx keyword arguments)."""
    at = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
    return {
        "/v1/readings/glucose": {"json": {"occurred_at": at, "unit": "mg/dL", "value": 110, "kind": "cgm",
                                          "user_id": owner}},
        "/v1/readings/bp": {"json": {"occurred_at": at, "systolic_mmhg": 120, "diastolic_mmhg": 80,
                                     "user_id": owner}},
        "/v1/readings/hba1c": {"json": {"occurred_at": at, "unit": "%", "value": 6.1, "user_id": owner}},
        "/v1/exercise": {"json": {"occurred_at": at, "activity": "walking", "duration_min": 20, "user_id": owner}},
        "/v1/meals": {"json": {"occurred_at": at, "meal_slot": "lunch", "carbs_g": 40, "user_id": owner}},
        "/v1/meals/photo": {"data": {"occurred_at": at, "meal_slot": "lunch", "user_id": owner},
                            "files": {"image": ("meal.jpg", encode("JPEG"), "image/jpeg")}},
    }


def test_no_one_sends_data_for_another_user(client: TestClient, account_factory: AccountFactory) -> None:
    owner, other = account_factory(), account_factory()
    paths = {path for path, operations in client.app.openapi()["paths"].items()  # type: ignore[attr-defined]
             if "post" in operations and "ingest" in operations["post"].get("tags", [])}
    requests = _ingest_requests(owner.user_id)
    assert paths == set(requests), "every ingest route is in this matrix"
    for path, request in requests.items():
        assert client.post(path, **request).status_code == 401, path
        forged = client.post(path, headers=other.auth, **request)
        assert forged.status_code == 403, (path, forged.text)
        assert forged.json()["error"]["fields"][0]["field"].endswith("user_id"), path
        assert client.post(path, headers=owner.auth, **request).status_code == 202, path
