"""Nightscout v1 compatibility: uploads exactly as xDrip+ and Loop send them, reads as followers make them.

Payload shapes follow the uploaders' own serialisers: xDrip+'s NightscoutUploader (populateV1APIBGEntry,
populateV1APIMeterReadingEntry, populateV1APICalibrationEntry, populateV1APITreatmentEntry) and LoopKit's
NightscoutKit (GlucoseEntry.dictionaryRepresentation, CarbCorrectionNightscoutTreatment).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from schemas.events import (
    ExerciseSession,
    GlucoseKind,
    GlucoseReading,
    MealSlot,
    Source,
    Trend,
)
from schemas.units import GlucoseUnit
from storage.raw import insert_raw
from tests.api.conftest import Account, AccountFactory, TopicTail

NOW = datetime.now(UTC).replace(microsecond=0)


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def java_time(moment: datetime, offset_hours: int = 2) -> str:
    """xDrip+'s SimpleDateFormat("yyyy-MM-dd'T'HH:mm:ss.SSSZ") in a phone's local zone, e.g. ...+0200."""
    local = moment.astimezone(timezone(timedelta(hours=offset_hours)))
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}" + local.strftime("%z")


def loop_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def xdrip_sgv(moment: datetime, sgv: int, direction: str = "Flat") -> dict[str, Any]:
    return {"device": "xDrip-DexcomG5", "date": ms(moment), "dateString": java_time(moment), "sgv": sgv,
            "delta": -1.5, "direction": direction, "type": "sgv", "filtered": sgv * 1000.0,
            "unfiltered": sgv * 1000.0, "rssi": 100, "noise": 1, "sysTime": java_time(moment)}


def xdrip_mbg(moment: datetime, mbg: float) -> dict[str, Any]:
    return {"device": "xDrip-DexcomG5", "type": "mbg", "date": ms(moment), "dateString": java_time(moment),
            "mbg": mbg, "sysTime": java_time(moment)}


def xdrip_cal(moment: datetime) -> dict[str, Any]:
    return {"device": "xDrip-DexcomG5", "type": "cal", "date": ms(moment), "dateString": java_time(moment),
            "slope": 1000.0, "intercept": -2500.0, "scale": 1, "sysTime": java_time(moment)}


def loop_sgv(moment: datetime, sgv: float, trend: int, direction: str) -> dict[str, Any]:
    # Loop sends date as a Double of milliseconds, and no _id for new entries.
    return {"date": moment.timestamp() * 1000, "dateString": loop_time(moment), "device": "loop://iPhone",
            "type": "sgv", "sgv": sgv, "trend": trend, "direction": direction, "trendRate": 0.4,
            "isCalibration": False}


def loop_carbs(moment: datetime, carbs: int) -> dict[str, Any]:
    return {"created_at": loop_time(moment), "timestamp": loop_time(moment), "enteredBy": "loop://iPhone",
            "eventType": "Carb Correction", "carbs": carbs, "absorptionTime": 180, "foodType": "🍝",
            "syncIdentifier": uuid.uuid4().hex, "userEnteredAt": loop_time(moment)}


@pytest.fixture
def secret(client: TestClient, account: Account) -> str:
    created = client.post("/v1/nightscout/secret", headers=account.auth)
    assert created.status_code == 201, created.text
    value: str = created.json()["secret"]
    return value


@pytest.fixture
def uploader(secret: str) -> dict[str, str]:
    """Headers an uploader sends: the SHA-1 of the secret."""
    return {"api-secret": sha1(secret), "Content-Type": "application/json", "Accept": "application/json"}


def test_the_secret_is_shown_once_with_the_urls_uploaders_need(client: TestClient, account: Account) -> None:
    created = client.post("/v1/nightscout/secret", headers=account.auth).json()
    assert created["base_url"] == "http://testserver/"
    assert created["uploader_url"] == f"http://{created['secret']}@testserver/api/v1/"
    assert len(created["secret"]) == 48
    assert client.post("/v1/nightscout/secret").status_code == 401  # needs a signed-in user


def test_an_xdrip_upload_becomes_glucose_readings(client: TestClient, account: Account, uploader: dict[str, str],
                                                   readings_tail: TopicTail) -> None:
    sgv_at, mbg_at = NOW - timedelta(minutes=10), NOW - timedelta(minutes=8)
    documents = [xdrip_sgv(sgv_at, 113, "FortyFiveDown"), xdrip_mbg(mbg_at, 121.0), xdrip_cal(mbg_at)]

    response = client.post("/api/v1/entries", json=documents, headers=uploader)

    assert response.status_code == 200, response.text
    echoed = response.json()
    assert len(echoed) == 3 and all(document["_id"] for document in echoed)
    assert [d["sgv"] if d["type"] == "sgv" else d.get("mbg") for d in echoed] == [113, 121.0, None]
    sensor, meter = readings_tail.events(account.user_id)
    assert isinstance(sensor, GlucoseReading) and isinstance(meter, GlucoseReading)
    assert (sensor.kind, sensor.value, sensor.unit, sensor.trend) == (GlucoseKind.CGM, 113, GlucoseUnit.MG_DL,
                                                                      Trend.FORTY_FIVE_DOWN)
    assert (meter.kind, meter.value, meter.trend) == (GlucoseKind.FINGERSTICK, 121.0, None)
    assert sensor.occurred_at == sgv_at and meter.occurred_at == mbg_at
    assert {sensor.source, meter.source} == {Source.NIGHTSCOUT}
    assert {sensor.device_id, meter.device_id} == {"xDrip-DexcomG5"}


def test_a_reupload_publishes_nothing_new(client: TestClient, account: Account, uploader: dict[str, str],
                                          readings_tail: TopicTail) -> None:
    documents = [xdrip_sgv(NOW - timedelta(minutes=m), 100 + m) for m in (15, 10, 5)]
    first = client.post("/api/v1/entries", json=documents, headers=uploader)
    # xDrip+ retries the whole batch after a timeout; a later batch overlaps the earlier one.
    again = client.post("/api/v1/entries.json", json=documents, headers=uploader)
    overlapping = client.post("/api/v1/entries", json=[documents[2], xdrip_sgv(NOW, 99)], headers=uploader)

    assert first.status_code == again.status_code == overlapping.status_code == 200
    assert [d["_id"] for d in again.json()] == [d["_id"] for d in first.json()]
    values = [e.value for e in readings_tail.events(account.user_id)]
    assert values == [115, 110, 105, 99]


def test_a_loop_upload_keeps_its_trend_and_gets_one_id_per_entry(client: TestClient, account: Account,
                                                                 secret: str, readings_tail: TopicTail) -> None:
    documents = [loop_sgv(NOW - timedelta(minutes=10), 140.0, 3, "FortyFiveUp"),
                 loop_sgv(NOW - timedelta(minutes=5), 150.0, 8, "NotComputable")]
    # NightscoutKit posts to /api/v1/entries with api-secret = secret.sha1 and requires 200 and len(response) == sent.
    response = client.post("/api/v1/entries", json=documents, headers={"api-secret": sha1(secret)})

    assert response.status_code == 200
    assert len(response.json()) == 2 and all(isinstance(d["_id"], str) for d in response.json())
    assert [e.trend for e in readings_tail.events(account.user_id)] == [Trend.FORTY_FIVE_UP, Trend.NOT_COMPUTABLE]


def test_loop_checks_its_credentials_with_experiments_test(client: TestClient, uploader: dict[str, str]) -> None:
    assert client.get("/api/v1/experiments/test", headers=uploader).json() == {"status": "ok"}
    assert client.get("/api/v1/experiments/test", headers={"api-secret": sha1("guess")}).status_code == 401


def test_carbs_exercise_and_bg_checks_become_events(client: TestClient, account: Account, uploader: dict[str, str],
                                                    readings_tail: TopicTail, meals_tail: TopicTail) -> None:
    yesterday = NOW - timedelta(days=1)
    loop_lunch = loop_carbs(yesterday.replace(hour=12, minute=30), 45)
    loop = client.post("/api/v1/treatments", json=[loop_lunch], headers=uploader)
    # xDrip+ upserts one treatment at a time with PUT, its uuid also turned into a Mongo-style _id.
    dinner = yesterday.replace(hour=19, minute=0)
    treatment_uuid = str(uuid.uuid4())
    xdrip_dinner = {"timestamp": ms(dinner), "eventType": "<none>", "enteredBy": "xdrip", "uuid": treatment_uuid,
                    "carbs": 20.0, "insulin": 2.0, "created_at": loop_time(dinner), "sysTime": java_time(dinner),
                    "_id": treatment_uuid.replace("-", "")[:24]}
    xdrip = client.put("/api/v1/treatments", json=xdrip_dinner, headers=uploader)
    careportal = client.post("/api/v1/treatments", headers=uploader, json=[
        {"eventType": "Exercise", "duration": 40, "notes": "bike", "created_at": loop_time(NOW - timedelta(hours=3)),
         "enteredBy": "careportal"},
        {"eventType": "BG Check", "glucose": 6.2, "glucoseType": "Finger", "units": "mmol",
         "created_at": loop_time(NOW - timedelta(hours=1))},
        {"eventType": "Correction Bolus", "insulin": 1.5, "created_at": loop_time(NOW)},  # acknowledged, dropped
    ])
    loop_again = client.post("/api/v1/treatments", json=[loop_lunch], headers=uploader)
    xdrip_again = client.put("/api/v1/treatments", json=xdrip_dinner, headers=uploader)

    assert [r.status_code for r in (loop, xdrip, careportal, loop_again, xdrip_again)] == [200] * 5
    assert len(careportal.json()) == 3
    assert xdrip.json()[0]["_id"] == xdrip_dinner["_id"]
    meals = meals_tail.events(account.user_id)
    assert [(m.carbs_g, m.meal_slot, m.device_id) for m in meals] == [
        (45, MealSlot.LUNCH, "loop://iPhone"), (20.0, MealSlot.DINNER, "xdrip")]
    exercise, bg_check = readings_tail.events(account.user_id)
    assert isinstance(exercise, ExerciseSession) and exercise.duration_min == 40
    assert isinstance(bg_check, GlucoseReading) and bg_check.kind is GlucoseKind.FINGERSTICK
    assert bg_check.unit is GlucoseUnit.MMOL_L and bg_check.value == 6.2


def test_implausible_values_are_acknowledged_but_not_published(client: TestClient, account: Account,
                                                                uploader: dict[str, str],
                                                                readings_tail: TopicTail) -> None:
    # Dexcom's special codes (sgv 1–12: sensor errors) and readings from the future are dropped, not refused,
    # so the uploader does not resend them for ever.
    documents = [xdrip_sgv(NOW - timedelta(minutes=5), 5), xdrip_sgv(NOW + timedelta(hours=2), 120),
                 xdrip_sgv(NOW - timedelta(minutes=1), 120)]
    response = client.post("/api/v1/entries", json=documents, headers=uploader)
    assert response.status_code == 200 and len(response.json()) == 3
    assert [e.value for e in readings_tail.events(account.user_id)] == [120]


def test_malformed_documents_are_refused_naming_the_field(client: TestClient, uploader: dict[str, str]) -> None:
    no_date = client.post("/api/v1/entries", json=[xdrip_sgv(NOW, 100), {"type": "sgv", "sgv": 100}],
                          headers=uploader)
    not_a_number = client.post("/api/v1/entries", json={"type": "sgv", "sgv": "high", "date": ms(NOW)},
                               headers=uploader)
    assert no_date.status_code == 422
    assert no_date.json()["error"]["fields"][0] == {
        "field": "1.date", "rule": "missing", "message": "date (ms since the epoch) or dateString is required"}
    assert not_a_number.status_code == 422 and not_a_number.json()["error"]["fields"][0]["field"] == "0.sgv"


@pytest.mark.parametrize("credential", [
    lambda secret: {"headers": {"api-secret": sha1(secret)}},
    lambda secret: {"headers": {"api-secret": sha1(secret).upper()}},
    lambda secret: {"params": {"token": secret}},
    lambda secret: {"params": {"secret": sha1(secret)}},
], ids=["api-secret header", "upper-case hex", "token query", "secret query"])
def test_each_way_of_sending_the_secret_works(client: TestClient, secret: str,
                                              credential: Callable[[str], dict[str, Any]]) -> None:
    assert client.get("/api/v1/status.json", **credential(secret)).status_code == 200


def test_a_wrong_missing_or_replaced_secret_is_refused(client: TestClient, account: Account, secret: str) -> None:
    entry = xdrip_sgv(NOW, 100)
    wrong = client.post("/api/v1/entries", json=entry, headers={"api-secret": sha1(secret + "x")})
    missing = client.post("/api/v1/entries", json=entry)
    client.post("/v1/nightscout/secret", headers=account.auth)  # a new secret replaces the old one
    replaced = client.get("/api/v1/entries.json", headers={"api-secret": sha1(secret)})
    for response in (wrong, missing, replaced):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"


def test_status_reports_a_nightscout_compatible_server(client: TestClient, account: Account,
                                                       uploader: dict[str, str]) -> None:
    status = client.get("/api/v1/status.json", headers=uploader).json()
    assert status["status"] == "ok" and status["apiEnabled"] is True
    assert status["settings"]["units"] == "mg/dl"
    assert abs(status["serverTimeEpoch"] - ms(datetime.now(UTC))) < 60_000
    assert status["authorized"] == {"sub": account.user_id}


def _stored(user_id: str, minutes_ago: int, mg_dl: float, kind: GlucoseKind = GlucoseKind.CGM,
            trend: Trend | None = Trend.FLAT) -> GlucoseReading:
    return GlucoseReading(user_id=user_id, device_id="sensor-1", source=Source.DEVICE,
                          occurred_at=NOW - timedelta(minutes=minutes_ago), unit=GlucoseUnit.MG_DL, value=mg_dl,
                          kind=kind, trend=trend if kind is GlucoseKind.CGM else None)


@pytest.fixture
def stored_readings(engine: Engine, account: Account) -> list[GlucoseReading]:
    """Rows as the stream workers write them (no worker runs in these tests, so they are inserted directly)."""
    readings = [_stored(account.user_id, 20, 101.4), _stored(account.user_id, 15, 110, trend=Trend.SINGLE_UP),
                _stored(account.user_id, 12, 95, kind=GlucoseKind.FINGERSTICK),
                _stored(account.user_id, 10, 120.6, trend=None)]
    with engine.begin() as connection:
        insert_raw(connection, readings)
    return readings


def test_entries_are_read_newest_first(client: TestClient, uploader: dict[str, str],
                                       stored_readings: list[GlucoseReading]) -> None:
    entries = client.get("/api/v1/entries.json", headers=uploader).json()
    assert [e.get("sgv", e.get("mbg")) for e in entries] == [121, 95, 110, 101]
    assert [e["type"] for e in entries] == ["sgv", "mbg", "sgv", "sgv"]
    newest = entries[0]
    assert newest["date"] == ms(stored_readings[3].occurred_at)
    assert newest["dateString"] == loop_time(stored_readings[3].occurred_at)
    assert newest["_id"] == str(stored_readings[3].event_id) and "direction" not in newest
    assert (entries[2]["direction"], entries[2]["trend"]) == ("SingleUp", 2)


def test_entries_filter_by_type_count_and_date(client: TestClient, uploader: dict[str, str],
                                               stored_readings: list[GlucoseReading]) -> None:
    def sgvs(path: str, **params: Any) -> list[int]:
        response = client.get(path, headers=uploader, params=params)
        assert response.status_code == 200, response.text
        return [e["sgv"] for e in response.json()]

    assert sgvs("/api/v1/entries/sgv.json") == [121, 110, 101]
    assert sgvs("/api/v1/entries/sgv.json", count=2) == [121, 110]
    since = ms(stored_readings[1].occurred_at)
    assert sgvs("/api/v1/entries/sgv.json", **{"find[date][$gte]": since}) == [121, 110]
    assert sgvs("/api/v1/entries/sgv.json", **{"find[date][$gt]": since}) == [121]
    assert sgvs("/api/v1/entries/sgv.json",
                **{"find[dateString][$lte]": loop_time(stored_readings[1].occurred_at)}) == [110, 101]
    assert sgvs("/api/v1/entries/current.json") == [121]
    mbg = client.get("/api/v1/entries/mbg.json", headers=uploader).json()
    assert [e["mbg"] for e in mbg] == [95]
    bad = client.get("/api/v1/entries.json", headers=uploader, params={"find[date][$gte]": "yesterday"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "query.find[date][$gte]"


def test_a_secret_reads_only_its_own_users_entries(client: TestClient, account_factory: AccountFactory,
                                                   stored_readings: list[GlucoseReading]) -> None:
    other = account_factory()
    other_secret = client.post("/v1/nightscout/secret", headers=other.auth).json()["secret"]
    assert client.get("/api/v1/entries.json", headers={"api-secret": sha1(other_secret)}).json() == []


def test_devicestatus_is_acknowledged(client: TestClient, uploader: dict[str, str]) -> None:
    status = {"device": "xDrip-DexcomG5", "uploader": {"battery": 80}, "created_at": loop_time(NOW)}
    response = client.post("/api/v1/devicestatus", json=status, headers=uploader)
    assert response.status_code == 200 and response.json() == [status]
