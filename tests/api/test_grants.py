"""Clinician grants: given and taken back by the patient, to clinician accounts only."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from storage.accounts import has_grant
from tests.api.conftest import Account, AccountFactory


def test_a_patient_grants_and_revokes_a_clinician(client: TestClient, account: Account,
                                                  account_factory: AccountFactory, engine: Engine) -> None:
    clinician = account_factory("clinician")
    granted = client.post("/v1/me/grants", json={"clinician_email": clinician.email.upper()}, headers=account.auth)
    assert granted.status_code == 201
    assert granted.json()["clinician_email"] == clinician.email
    again = client.post("/v1/me/grants", json={"clinician_email": clinician.email}, headers=account.auth)
    assert again.json()["granted_at"] == granted.json()["granted_at"]  # granting twice keeps the first grant
    assert [g["clinician_email"] for g in client.get("/v1/me/grants", headers=account.auth).json()] == [
        clinician.email]
    with engine.connect() as connection:
        assert has_grant(connection, account.user_id, clinician.user_id)

    revoked = client.request("DELETE", "/v1/me/grants", json={"clinician_email": clinician.email},
                             headers=account.auth)
    assert revoked.status_code == 204
    assert client.get("/v1/me/grants", headers=account.auth).json() == []
    with engine.connect() as connection:
        assert not has_grant(connection, account.user_id, clinician.user_id)
    gone = client.request("DELETE", "/v1/me/grants", json={"clinician_email": clinician.email}, headers=account.auth)
    assert gone.status_code == 404


def test_only_clinician_accounts_can_be_granted(client: TestClient, account: Account,
                                                account_factory: AccountFactory) -> None:
    not_a_clinician = account_factory("user")
    for email in (not_a_clinician.email, "nobody-here@example.org"):
        response = client.post("/v1/me/grants", json={"clinician_email": email}, headers=account.auth)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_a_clinician_cannot_grant_themself(client: TestClient, account_factory: AccountFactory) -> None:
    clinician = account_factory("clinician")
    response = client.post("/v1/me/grants", json={"clinician_email": clinician.email}, headers=clinician.auth)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["rule"] == "not_yourself"


def test_grants_are_per_patient(client: TestClient, account_factory: AccountFactory) -> None:
    alice, bob, clinician = account_factory(), account_factory(), account_factory("clinician")
    client.post("/v1/me/grants", json={"clinician_email": clinician.email}, headers=alice.auth)

    assert client.get("/v1/me/grants", headers=bob.auth).json() == []
    # Bob cannot take away what Alice gave.
    taken = client.request("DELETE", "/v1/me/grants", json={"clinician_email": clinician.email}, headers=bob.auth)
    assert taken.status_code == 404
    assert len(client.get("/v1/me/grants", headers=alice.auth).json()) == 1
    assert client.get("/v1/me/grants").status_code == 401
