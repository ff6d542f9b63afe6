"""Registration, sign-in, refresh-token rotation and the signed-in user."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from api.security import TokenIssuer, TokenKind
from storage.accounts import Role
from tests.api.conftest import JWT_SECRET, PASSWORD, Account, sign_up, unique_email


def test_register_creates_a_user_with_a_normalised_address(client: TestClient) -> None:
    email = unique_email()
    response = client.post("/v1/auth/register", json={"email": email.upper(), "password": PASSWORD})
    assert response.status_code == 201
    body = response.json()
    assert (body["email"], body["role"]) == (email, "user")
    assert set(body) == {"id", "email", "role", "created_at"}  # never the hash


def test_an_address_registers_once_whatever_its_case(client: TestClient, account: Account) -> None:
    again = client.post("/v1/auth/register", json={"email": account.email.upper(), "password": PASSWORD})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "email_taken"


def test_password_and_address_rules_name_the_field(client: TestClient) -> None:
    short = client.post("/v1/auth/register", json={"email": unique_email(), "password": "nine char"})
    bad_email = client.post("/v1/auth/register", json={"email": "not-an-address", "password": PASSWORD})
    same = unique_email()
    as_email = client.post("/v1/auth/register", json={"email": same, "password": same})
    admin = client.post("/v1/auth/register", json={"email": unique_email(), "password": PASSWORD, "role": "admin"})

    assert (short.json()["error"]["fields"][0]["field"], short.json()["error"]["fields"][0]["rule"]) == (
        "password", "too_short")
    assert bad_email.json()["error"]["fields"][0]["field"] == "email"
    assert as_email.json()["error"]["fields"][0] == {"field": "password", "rule": "not_email",
                                                     "message": "must not be the e-mail address"}
    assert admin.json()["error"]["fields"][0]["field"] == "role"  # admins are made with `vitalstream api set-role`
    assert {r.status_code for r in (short, bad_email, as_email, admin)} == {422}


def test_sign_in_gives_a_token_pair_for_the_right_password_only(client: TestClient, account: Account) -> None:
    good = client.post("/v1/auth/token", data={"username": account.email, "password": PASSWORD})
    wrong = client.post("/v1/auth/token", data={"username": account.email, "password": PASSWORD + "!"})
    unknown = client.post("/v1/auth/token", data={"username": unique_email(), "password": PASSWORD})

    assert good.status_code == 200
    assert set(good.json()) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert good.json()["token_type"] == "bearer" and good.json()["expires_in"] == 900
    # Same answer for a wrong password and an unknown address: sign-in does not reveal who has an account.
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.headers["WWW-Authenticate"] == "Bearer"


def test_me_returns_the_token_holder(client: TestClient, account: Account) -> None:
    me = client.get("/v1/me", headers=account.auth)
    assert me.status_code == 200 and me.json()["id"] == account.user_id
    assert client.get("/v1/me").status_code == 401


def test_a_refresh_token_works_once_and_a_replay_revokes_the_session(client: TestClient, account: Account) -> None:
    first = client.post("/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert first.status_code == 200
    rotated = first.json()
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {rotated['access_token']}"}).status_code == 200

    replay = client.post("/v1/auth/refresh", json={"refresh_token": account.refresh_token})
    assert replay.status_code == 401
    # The replay looks like a stolen token: the rotated one is revoked too, so everyone signs in again.
    after = client.post("/v1/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert after.status_code == 401


def test_tokens_of_the_wrong_kind_or_age_are_refused(client: TestClient, account: Account) -> None:
    as_refresh = client.post("/v1/auth/refresh", json={"refresh_token": account.access_token})
    issuer = TokenIssuer(JWT_SECRET, timedelta(minutes=15), timedelta(days=30))
    expired, _ = issuer.issue(account.user_id, Role.USER, TokenKind.ACCESS, datetime.now(UTC) - timedelta(hours=1))
    old = client.get("/v1/me", headers={"Authorization": f"Bearer {expired}"})
    other_key = TokenIssuer("another-secret-0123456789abcdef0123", timedelta(minutes=15), timedelta(days=30))
    forged, _ = other_key.issue(account.user_id, Role.ADMIN, TokenKind.ACCESS, datetime.now(UTC))
    forgery = client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"})

    assert as_refresh.status_code == old.status_code == forgery.status_code == 401
    assert "refresh token is needed" in as_refresh.json()["error"]["message"]
    assert "expired" in old.json()["error"]["message"]


def test_a_clinician_can_register_as_one(client: TestClient) -> None:
    clinician = sign_up(client, role="clinician")
    assert client.get("/v1/me", headers=clinician.auth).json()["role"] == "clinician"
