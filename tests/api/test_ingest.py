"""Ingest, end to end: credentials → request → events on the real Kafka topic, decoded with the contracts."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from schemas.events import (
    BloodPressureReading,
    ExerciseSession,
    GlucoseReading,
    HbA1cResult,
    MealLogged,
    Source,
)
from storage.tables import accepted_events, glucose_readings
from tests.api.conftest import Account, AccountFactory, AppFactory, TopicTail, sign_up

NOW = datetime.now(UTC).replace(microsecond=0)


def glucose(value: float = 120.0, minutes_ago: int = 5, **extra: Any) -> dict[str, Any]:
    return {"occurred_at": (NOW - timedelta(minutes=minutes_ago)).isoformat(), "unit": "mg/dL", "value": value,
            "kind": "cgm", **extra}


def test_a_device_key_publishes_glucose_readings_keyed_by_the_user(client: TestClient, account: Account,
                                                                     device_key: str, readings_tail: TopicTail) -> None:
    response = client.post("/v1/readings/glucose", headers={"X-API-Key": device_key},
                           json=[glucose(110, 10, trend="Flat"), glucose(6.5, 5, unit="mmol/L", kind="fingerstick")])

    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 2
    events = readings_tail.events(account.user_id)
    assert [str(e.event_id) for e in events] == response.json()["event_ids"]
    assert all(isinstance(e, GlucoseReading) for e in events)
    devices = client.get("/v1/devices", headers=account.auth).json()
    assert {e.device_id for e in events} == {devices[0]["device_id"]}
    assert {e.source for e in events} == {Source.DEVICE}
    assert [e.glucose_mg_dl for e in events] == [110, 6.5 * 18.01559]


def test_every_ingest_route_publishes_its_contract(client: TestClient, account: Account, readings_tail: TopicTail,
                                                    meals_tail: TopicTail) -> None:
    at = (NOW - timedelta(hours=1)).isoformat()
    bodies = {
        "/v1/readings/glucose": glucose(),
        "/v1/readings/bp": {"occurred_at": at, "systolic_mmhg": 128, "diastolic_mmhg": 82, "pulse_bpm": 70},
        "/v1/readings/hba1c": {"occurred_at": at, "unit": "mmol/mol", "value": 53},
        "/v1/exercise": {"occurred_at": at, "activity": "walking", "duration_min": 30, "steps": 4000},
        "/v1/meals": {"occurred_at": at, "meal_slot": "lunch", "carbs_g": 60, "energy_kcal": 650},
    }
    for path, body in bodies.items():
        response = client.post(path, json=body, headers=account.auth)
        assert response.status_code == 202, (path, response.text)

    readings = readings_tail.events(account.user_id)
    assert [type(e) for e in readings] == [GlucoseReading, BloodPressureReading, HbA1cResult, ExerciseSession]
    meals = meals_tail.events(account.user_id)
    assert [type(e) for e in meals] == [MealLogged]
    assert {e.source for e in readings + meals} == {Source.APP}
    assert {e.device_id for e in readings + meals} == {"app"}  # a bearer token without a body device_id
    assert round(readings[2].hba1c_pct, 1) == 7.0


def test_a_bearer_token_may_name_the_device(client: TestClient, account: Account, readings_tail: TopicTail) -> None:
    response = client.post("/v1/readings/glucose", json=glucose(device_id="meter-7"), headers=account.auth)
    assert response.status_code == 202
    assert [e.device_id for e in readings_tail.events(account.user_id)] == ["meter-7"]


def test_resubmitting_client_event_ids_publishes_nothing_new(client: TestClient, account: Account,
                                                            readings_tail: TopicTail) -> None:
    body = [glucose(100, 15, event_id=str(uuid.uuid4())), glucose(105, 10, event_id=str(uuid.uuid4()))]
    first = client.post("/v1/readings/glucose", json=body, headers=account.auth)
    again = client.post("/v1/readings/glucose", json=body, headers=account.auth)
    # One new event beside a known one: only the new one goes out.
    extra = glucose(111, 5, event_id=str(uuid.uuid4()))
    mixed = client.post("/v1/readings/glucose", json=[body[0], extra], headers=account.auth)

    assert first.status_code == again.status_code == mixed.status_code == 202
    assert again.json() == first.json()
    ids = [str(e.event_id) for e in readings_tail.events(account.user_id)]
    assert ids == [body[0]["event_id"], body[1]["event_id"], extra["event_id"]]


def test_an_idempotency_key_replays_the_first_response(client: TestClient, account: Account,
                                                      readings_tail: TopicTail) -> None:
    headers = account.auth | {"Idempotency-Key": str(uuid.uuid4())}
    first = client.post("/v1/readings/glucose", json=glucose(), headers=headers)
    again = client.post("/v1/readings/glucose", json=glucose(), headers=headers)

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert len(readings_tail.events(account.user_id)) == 1


def test_an_idempotency_key_reused_for_other_data_is_refused(client: TestClient, account: Account) -> None:
    headers = account.auth | {"Idempotency-Key": str(uuid.uuid4())}
    assert client.post("/v1/readings/glucose", json=glucose(100), headers=headers).status_code == 202
    reused = client.post("/v1/readings/glucose", json=glucose(200), headers=headers)
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"


def test_idempotency_keys_belong_to_their_user(client: TestClient, account_factory: AccountFactory,
                                               readings_tail: TopicTail) -> None:
    alice, bob = account_factory(), account_factory()
    key = {"Idempotency-Key": str(uuid.uuid4())}
    for person in (alice, bob):
        assert client.post("/v1/readings/glucose", json=glucose(), headers=person.auth | key).status_code == 202
    assert len(readings_tail.events(alice.user_id)) == len(readings_tail.events(bob.user_id)) == 1


def test_a_body_user_id_of_someone_else_is_forbidden(client: TestClient, account_factory: AccountFactory,
                                                     readings_tail: TopicTail) -> None:
    alice, bob = account_factory(), account_factory()
    as_bob = client.post("/v1/readings/glucose", json=glucose(user_id=bob.user_id), headers=alice.auth)
    own = client.post("/v1/readings/glucose", json=glucose(user_id=alice.user_id), headers=alice.auth)

    assert as_bob.status_code == 403
    assert as_bob.json()["error"]["fields"][0] == {"field": "0.user_id", "rule": "must_be_caller",
                                                   "message": "must be absent or your own user id"}
    assert own.status_code == 202
    assert readings_tail.events(bob.user_id) == []
    assert len(readings_tail.events(alice.user_id)) == 1


def test_an_api_key_fixes_the_device(client: TestClient, device_key: str) -> None:
    response = client.post("/v1/readings/glucose", json=glucose(device_id="another-device"),
                           headers={"X-API-Key": device_key})
    assert response.status_code == 403
    assert response.json()["error"]["fields"][0]["rule"] == "must_match_api_key"


def test_ingest_needs_a_valid_credential(client: TestClient, account: Account) -> None:
    missing = client.post("/v1/readings/glucose", json=glucose())
    wrong_key = client.post("/v1/readings/glucose", json=glucose(), headers={"X-API-Key": "vsk_not-a-key"})
    forged = client.post("/v1/readings/glucose", json=glucose(),
                         headers={"Authorization": f"Bearer {account.access_token[:-4]}AAAA"})
    refresh_as_access = client.post("/v1/readings/glucose", json=glucose(),
                                    headers={"Authorization": f"Bearer {account.refresh_token}"})
    for response in (missing, wrong_key, forged, refresh_as_access):
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "unauthorized"
        assert "WWW-Authenticate" in response.headers


def test_validation_errors_name_each_item_field_and_rule(client: TestClient, account: Account,
                                                          readings_tail: TopicTail) -> None:
    response = client.post("/v1/readings/bp", headers=account.auth, json=[
        {"occurred_at": NOW.isoformat(), "systolic_mmhg": 120, "diastolic_mmhg": 80},
        {"occurred_at": NOW.isoformat(), "systolic_mmhg": 400, "diastolic_mmhg": "80"},
    ])
    assert response.status_code == 422
    fields = {(f["field"], f["rule"]) for f in response.json()["error"]["fields"]}
    assert fields == {("1.systolic_mmhg", "less_than_equal"), ("1.diastolic_mmhg", "int_type")}
    # Contract rules that span fields are reported the same way.
    crossed = client.post("/v1/readings/bp", headers=account.auth,
                          json={"occurred_at": NOW.isoformat(), "systolic_mmhg": 120, "diastolic_mmhg": 130})
    assert crossed.json()["error"]["fields"][0]["field"] == "0.diastolic_mmhg"
    future = client.post("/v1/readings/glucose", headers=account.auth, json=glucose(minutes_ago=-60))
    assert future.status_code == 422 and future.json()["error"]["fields"][0]["field"] == "0.occurred_at"
    assert readings_tail.events(account.user_id) == []  # nothing of a refused batch goes out


def test_server_filled_fields_cannot_be_sent(client: TestClient, account: Account) -> None:
    for field, value in (("source", "simulator"), ("received_at", NOW.isoformat()), ("type", "glucose")):
        response = client.post("/v1/readings/glucose", headers=account.auth, json=glucose() | {field: value})
        assert response.status_code == 422
        assert response.json()["error"]["fields"][0] == {"field": f"0.{field}", "rule": "extra_forbidden",
                                                         "message": "Extra inputs are not permitted"}


def test_batches_hold_one_to_a_thousand_events(client: TestClient, account: Account,
                                               readings_tail: TopicTail) -> None:
    thousand = [glucose(100 + i % 50, minutes_ago=i) for i in range(1000)]
    accepted = client.post("/v1/readings/glucose", headers=account.auth, json=thousand)
    too_many = client.post("/v1/readings/glucose", headers=account.auth, json=[*thousand, glucose()])
    empty = client.post("/v1/readings/glucose", headers=account.auth, json=[])

    assert accepted.status_code == 202 and accepted.json()["accepted"] == 1000
    assert too_many.status_code == 422 and too_many.json()["error"]["fields"][0]["rule"] == "too_long"
    assert empty.status_code == 422 and empty.json()["error"]["fields"][0]["rule"] == "too_short"
    assert len(readings_tail.events(account.user_id)) == 1000


def test_ingest_writes_nothing_to_the_reading_tables(client: TestClient, account: Account, engine: Engine) -> None:
    assert client.post("/v1/readings/glucose", headers=account.auth, json=glucose()).status_code == 202
    with engine.connect() as connection:
        rows = connection.execute(select(func.count()).select_from(glucose_readings)
                                  .where(glucose_readings.c.user_id == account.user_id)).scalar_one()
    assert rows == 0  # the stream workers store readings; the API only publishes


def test_kafka_down_answers_503_and_accepts_nothing(app_factory: AppFactory, engine: Engine) -> None:
    unreachable = app_factory(kafka_bootstrap_servers="127.0.0.1:9", publish_timeout_s=1.0)
    account = sign_up(unreachable)
    event_id = str(uuid.uuid4())
    started = time.monotonic()
    response = unreachable.post("/v1/readings/glucose", headers=account.auth, json=glucose(event_id=event_id))

    assert response.status_code == 503, response.text
    assert time.monotonic() - started < 10
    error = response.json()["error"]
    assert error["code"] == "kafka_unavailable" and "not accepted" in error["message"]
    # The claim on the event id was rolled back: a retry (e.g. once Kafka is back) is not taken for a duplicate.
    with engine.connect() as connection:
        claimed = connection.execute(select(func.count()).select_from(accepted_events)
                                     .where(accepted_events.c.user_id == account.user_id)).scalar_one()
    assert claimed == 0
