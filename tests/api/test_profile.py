"""The profile: PUT publishes it on the profile topic (keyed by user), GET reads what the worker stored.

The stream worker applies profiles in production; here Writer.profile stores one through the worker's own upsert.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from schemas.derived import UserProfile
from schemas.topics import USER_PROFILES
from tests.api.conftest import Account, AccountFactory, AppFactory, TailFactory
from tests.api.rows import Writer


def test_put_publishes_the_profile_keyed_by_user(client: TestClient, account: Account, tail: TailFactory) -> None:
    profiles = tail(USER_PROFILES)
    before = datetime.now(UTC)

    response = client.put("/v1/me/profile", json={"time_zone": "Asia/Seoul", "bp_guideline": "ksh_2018"},
                          headers=account.auth)

    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["user_id"], body["time_zone"], body["bp_guideline"]) == (account.user_id, "Asia/Seoul", "ksh_2018")
    assert (body["effective_bp_guideline"], body["applied"]) == ("ksh_2018", False)
    messages = profiles.messages(account.user_id)
    assert len(messages) == 1
    assert messages[0].topic() == USER_PROFILES.name
    assert messages[0].key() == account.user_id.encode()
    assert dict(messages[0].headers() or []) == {"type": b"user_profile", "schema_version": b"1"}
    published = UserProfile.model_validate_json(messages[0].value() or b"")
    assert (published.user_id, published.time_zone, published.bp_guideline) == (
        account.user_id, "Asia/Seoul", "ksh_2018")
    assert before <= published.updated_at <= datetime.now(UTC)
    assert body["updated_at"] == published.updated_at.isoformat().replace("+00:00", "Z")


def test_a_null_guideline_is_published_as_the_deployment_default(client: TestClient, account: Account,
                                                                 tail: TailFactory) -> None:
    profiles = tail(USER_PROFILES)
    response = client.put("/v1/me/profile", json={"time_zone": "UTC", "bp_guideline": None}, headers=account.auth)
    assert response.status_code == 202
    assert response.json()["effective_bp_guideline"] == "acc_aha_2017"  # VITALSTREAM_BP_GUIDELINE's default
    [published] = profiles.events(account.user_id)
    assert published.bp_guideline is None


@pytest.mark.parametrize(("body", "field", "rule"), [
    ({"time_zone": "Mars/Olympus", "bp_guideline": None}, "time_zone", "iana_time_zone"),
    ({"time_zone": "../../etc/passwd", "bp_guideline": None}, "time_zone", "iana_time_zone"),
    ({"time_zone": "", "bp_guideline": None}, "time_zone", "string_too_short"),
    ({"time_zone": "UTC", "bp_guideline": "jnc7"}, "bp_guideline", "enum"),
    ({"time_zone": "UTC"}, "bp_guideline", "missing"),
    ({"bp_guideline": None}, "time_zone", "missing"),
    ({"time_zone": "UTC", "bp_guideline": None, "units": "mmol"}, "units", "extra_forbidden"),
])
def test_bad_profiles_are_refused_naming_the_field(client: TestClient, account: Account, tail: TailFactory,
                                                   body: dict[str, object], field: str, rule: str) -> None:
    profiles = tail(USER_PROFILES)
    response = client.put("/v1/me/profile", json=body, headers=account.auth)
    assert response.status_code == 422, response.text
    [problem] = response.json()["error"]["fields"]
    assert (problem["field"], problem["rule"]) == (field, rule)
    assert profiles.messages(account.user_id) == []


def test_setting_a_profile_needs_a_signed_in_user(client: TestClient) -> None:
    response = client.put("/v1/me/profile", json={"time_zone": "UTC", "bp_guideline": None})
    assert response.status_code == 401


def test_without_a_stored_profile_the_defaults_show_unapplied(client: TestClient, account: Account) -> None:
    body = client.get("/v1/me/profile", headers=account.auth).json()
    assert body == {"user_id": account.user_id, "time_zone": "UTC", "bp_guideline": None,
                    "effective_bp_guideline": "acc_aha_2017", "updated_at": None, "applied": False}


def test_the_default_guideline_is_the_deployments(app_factory: AppFactory, account: Account) -> None:
    esc = app_factory(bp_guideline="esc_esh_2018")
    assert esc.get("/v1/me/profile", headers=account.auth).json()["effective_bp_guideline"] == "esc_esh_2018"


def test_get_reads_the_stored_profile(client: TestClient, account: Account, engine: Engine) -> None:
    writer = Writer(engine, account.user_id)
    set_at = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    writer.profile("America/New_York", "esc_esh_2018", updated_at=set_at)
    writer.profile("Europe/Paris", None, updated_at=set_at - timedelta(days=1))  # older: ignored by the worker

    body = client.get("/v1/me/profile", headers=account.auth).json()

    assert body == {"user_id": account.user_id, "time_zone": "America/New_York", "bp_guideline": "esc_esh_2018",
                    "effective_bp_guideline": "esc_esh_2018", "updated_at": "2026-03-01T08:00:00Z", "applied": True}
    writer.profile("Europe/Paris", None, updated_at=set_at + timedelta(days=1))
    newer = client.get("/v1/me/profile", headers=account.auth).json()
    assert (newer["time_zone"], newer["bp_guideline"], newer["effective_bp_guideline"]) == (
        "Europe/Paris", None, "acc_aha_2017")


def test_a_granted_clinician_reads_the_profile_but_cannot_set_it(client: TestClient, account: Account,
                                                                 account_factory: AccountFactory,
                                                                 engine: Engine) -> None:
    clinician, stranger = account_factory("clinician"), account_factory("clinician")
    Writer(engine, account.user_id).profile("Asia/Tokyo", "ksh_2018")
    client.post("/v1/me/grants", json={"clinician_email": clinician.email}, headers=account.auth)

    theirs = client.get(f"/v1/users/{account.user_id}/profile", headers=clinician.auth)
    assert theirs.status_code == 200
    assert theirs.json() == client.get("/v1/me/profile", headers=account.auth).json()
    assert client.get(f"/v1/users/{account.user_id}/profile", headers=stranger.auth).status_code == 404
    change = client.put(f"/v1/users/{account.user_id}/profile", json={"time_zone": "UTC", "bp_guideline": None},
                        headers=clinician.auth)
    assert change.status_code == 405
    # The clinician's own PUT sets the clinician's profile, never the patient's.
    assert client.put("/v1/me/profile", json={"time_zone": "UTC", "bp_guideline": None},
                      headers=clinician.auth).json()["user_id"] == clinician.user_id
