"""Device API keys: shown once, stored hashed, listed per owner, revoked at once."""

from __future__ import annotations

import hashlib

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from storage.tables import device_keys
from tests.api.conftest import Account, AccountFactory

GLUCOSE = {"occurred_at": "2026-01-01T08:00:00+00:00", "unit": "mg/dL", "value": 99, "kind": "fingerstick"}


def test_a_key_is_shown_once_and_only_its_hash_is_stored(client: TestClient, account: Account,
                                                        engine: Engine) -> None:
    created = client.post("/v1/devices", json={"name": "Contour Next", "kind": "glucose_meter"}, headers=account.auth)
    assert created.status_code == 201
    body = created.json()
    assert body["api_key"].startswith("vsk_") and len(body["api_key"]) > 40
    listed = client.get("/v1/devices", headers=account.auth).json()
    assert listed == [{k: v for k, v in body.items() if k != "api_key"}]
    with engine.connect() as connection:
        stored = connection.execute(select(device_keys.c.key_sha256).where(device_keys.c.id == body["device_id"]))
        assert stored.scalar_one() == hashlib.sha256(body["api_key"].encode()).hexdigest()


def test_a_revoked_key_stops_working_at_once(client: TestClient, account: Account, device_key: str) -> None:
    device_id = client.get("/v1/devices", headers=account.auth).json()[0]["device_id"]
    assert client.post("/v1/readings/glucose", json=GLUCOSE, headers={"X-API-Key": device_key}).status_code == 202

    assert client.delete(f"/v1/devices/{device_id}", headers=account.auth).status_code == 204
    assert client.post("/v1/readings/glucose", json=GLUCOSE, headers={"X-API-Key": device_key}).status_code == 401
    assert client.get("/v1/devices", headers=account.auth).json() == []
    assert client.delete(f"/v1/devices/{device_id}", headers=account.auth).status_code == 404


def test_a_user_cannot_see_or_revoke_another_users_device(client: TestClient, account_factory: AccountFactory) -> None:
    alice, bob = account_factory(), account_factory()
    bobs = client.post("/v1/devices", json={"name": "cuff", "kind": "bp_monitor"}, headers=bob.auth).json()

    assert client.get("/v1/devices", headers=alice.auth).json() == []
    stolen = client.delete(f"/v1/devices/{bobs['device_id']}", headers=alice.auth)
    assert stolen.status_code == 404  # not 403: alice learns nothing about bob's ids
    assert [d["device_id"] for d in client.get("/v1/devices", headers=bob.auth).json()] == [bobs["device_id"]]


def test_device_management_needs_a_signed_in_user_not_a_device(client: TestClient, device_key: str) -> None:
    for response in (client.get("/v1/devices"), client.get("/v1/devices", headers={"X-API-Key": device_key}),
                     client.post("/v1/devices", json={"name": "x", "kind": "cgm"}, headers={"X-API-Key": device_key})):
        assert response.status_code == 401


def test_device_fields_are_validated(client: TestClient, account: Account) -> None:
    response = client.post("/v1/devices", json={"name": "", "kind": "toaster"}, headers=account.auth)
    assert response.status_code == 422
    assert {(f["field"], f["rule"]) for f in response.json()["error"]["fields"]} == {("name", "string_too_short"),
                                                                                     ("kind", "enum")}
