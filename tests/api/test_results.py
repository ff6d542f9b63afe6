"""Results routes return what the tables hold, with the categories of streams.metrics."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.api.conftest import Account, AccountFactory
from tests.api.rows import Writer

NEW_YORK = ZoneInfo("America/New_York")
REASONS = [{"code": "tir_below_target", "tier": "high", "text": "Time in range 48 % (target > 70 %)",
            "source": "Battelino et al. 2019"}]


@pytest.fixture
def writer(engine: Engine, account: Account) -> Writer:
    return Writer(engine, account.user_id)


def test_a_new_user_has_an_empty_summary(client: TestClient, account: Account) -> None:
    body = client.get("/v1/me/summary", headers=account.auth).json()
    assert body == {"user_id": account.user_id, "risk_tier": None, "glucose": None, "blood_pressure": None,
                    "hba1c": None}


def test_summary_holds_the_newest_of_each_with_categories(client: TestClient, account: Account,
                                                          writer: Writer) -> None:
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    writer.risk_tier(now - timedelta(days=2), "moderate", [])
    writer.risk_tier(now - timedelta(hours=1), "high", REASONS)
    writer.glucose([(now - timedelta(hours=3), 250.0)])
    writer.glucose([(now - timedelta(hours=1), 110.0)], kind="fingerstick", meal_context="fasting")
    writer.blood_pressure([(now - timedelta(days=1), 150, 95), (now - timedelta(hours=2), 135, 85)])
    writer.hba1c([(now - timedelta(days=90), 7.5), (now - timedelta(days=5), 6.8)])

    body = client.get("/v1/me/summary", headers=account.auth).json()

    assert body["risk_tier"] == {"tier": "high", "as_of": "2026-03-10T11:00:00Z", "reasons": REASONS}
    glucose = body["glucose"]
    assert (glucose["glucose_mg_dl"], glucose["kind"], glucose["meal_context"]) == (110.0, "fingerstick", "fasting")
    assert glucose["range"] == "in_range"
    assert glucose["fasting_category"] == "prediabetes"  # 100 <= 110 < 126 (ADA)
    assert glucose["in_meal_target"] is None
    bp = body["blood_pressure"]
    assert (bp["systolic_mmhg"], bp["diastolic_mmhg"]) == (135, 85)
    assert (bp["guideline"], bp["category"], bp["display_level"], bp["crisis"]) == (
        "acc_aha_2017", "stage_1_hypertension", "borderline", False)
    assert body["hba1c"]["hba1c_pct"] == 6.8
    assert body["hba1c"]["category"] == "diabetes_range"
    assert body["hba1c"]["hba1c_mmol_mol"] == pytest.approx(10.929 * (6.8 - 2.15))

    esc = client.get("/v1/me/summary", params={"bp_guideline": "esc_esh_2018"}, headers=account.auth).json()
    assert esc["blood_pressure"]["category"] == "high_normal"  # 130-139 / 85-89 under ESC/ESH 2018


@pytest.mark.parametrize(("value", "context", "expected_range", "in_target"), [
    (50.0, "unknown", "very_low", None), (65.0, "before_meal", "low", False), (120.0, "before_meal", "in_range", True),
    (180.0, "after_meal", "in_range", False), (200.0, "unknown", "high", None), (251.0, "unknown", "very_high", None),
])
def test_glucose_categories_at_the_edges(client: TestClient, account_factory: AccountFactory, engine: Engine,
                                         value: float, context: str, expected_range: str,
                                         in_target: bool | None) -> None:
    account = account_factory()
    Writer(engine, account.user_id).glucose([(datetime.now(UTC), value)], kind="fingerstick", meal_context=context)
    glucose = client.get("/v1/me/summary", headers=account.auth).json()["glucose"]
    assert (glucose["range"], glucose["in_meal_target"]) == (expected_range, in_target)


def test_glucose_metrics_are_the_newest_row_of_the_window(client: TestClient, account: Account,
                                                          writer: Writer) -> None:
    as_of = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
    writer.glucose_metrics("14d", as_of - timedelta(hours=5), tir_pct=60.0)
    newest = writer.glucose_metrics("14d", as_of, tir_pct=75.5, gri=22.0)
    writer.glucose_metrics("24h", as_of + timedelta(hours=1), tir_pct=90.0)

    body = client.get("/v1/me/metrics/glucose", params={"window": "14d"}, headers=account.auth).json()
    assert body["tir_pct"] == 75.5 and body["gri"] == 22.0
    assert body["as_of"] == "2026-03-10T12:30:00Z"
    assert {k: body[k] for k in ("readings", "cv_pct", "gmi_pct", "sufficient")} == {
        k: newest[k] for k in ("readings", "cv_pct", "gmi_pct", "sufficient")}
    assert client.get("/v1/me/metrics/glucose", params={"window": "24h"},
                      headers=account.auth).json()["tir_pct"] == 90.0


def test_glucose_metrics_before_any_are_404_and_windows_are_checked(client: TestClient, account: Account) -> None:
    assert client.get("/v1/me/metrics/glucose", headers=account.auth).status_code == 404
    wrong = client.get("/v1/me/metrics/glucose", params={"window": "7d"}, headers=account.auth)
    assert wrong.status_code == 422
    assert wrong.json()["error"]["fields"][0]["field"] == "query.window"


def test_daily_reads_local_days(client: TestClient, account: Account, writer: Writer) -> None:
    # 2026-03-03 in New York (UTC-5): local midnight is 05:00 UTC. A reading at 03:00 UTC on the 4th is the 3rd.
    first, second = date(2026, 3, 3), date(2026, 3, 4)
    writer.daily_totals(first, "America/New_York", carbs_g=210.0, meals=3, exercise_min=45.0)
    writer.daily_totals(second, "America/New_York", carbs_g=150.0, meals=2, exercise_min=0.0)
    on_first = [(datetime(2026, 3, 3, 12, tzinfo=UTC), 100.0), (datetime(2026, 3, 3, 20, tzinfo=UTC), 200.0),
                (datetime(2026, 3, 4, 3, tzinfo=UTC), 60.0)]
    on_second = [(datetime(2026, 3, 4, 6, tzinfo=UTC), 150.0), (datetime(2026, 3, 5, 4, 59, tzinfo=UTC), 170.0)]
    writer.glucose(on_first + on_second)
    writer.glucose([(datetime(2026, 3, 5, 5, 0, tzinfo=UTC), 400.0)])  # the 5th in New York: outside the range
    writer.blood_pressure([(datetime(2026, 3, 4, 2, tzinfo=UTC), 130, 80), (datetime(2026, 3, 3, 15, tzinfo=UTC),
                                                                             140, 90)])

    response = client.get("/v1/me/daily", params={"from": "2026-03-03", "to": "2026-03-04"}, headers=account.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["time_zone"] == "America/New_York"  # the zone the worker counted the days in
    days = {d["day"]: d for d in body["days"]}
    assert list(days) == ["2026-03-03", "2026-03-04"]
    d1, d2 = days["2026-03-03"], days["2026-03-04"]
    assert (d1["carbs_g"], d1["meals"], d1["exercise_min"]) == (210.0, 3, 45.0)
    assert d1["glucose_readings"] == 3
    assert d1["glucose_mean_mg_dl"] == pytest.approx(120.0)
    assert d1["glucose_tir_pct"] == pytest.approx(100 / 3)  # 100 in range; 200 and 60 out
    assert (d1["bp_readings"], d1["bp_mean_systolic_mmhg"], d1["bp_mean_diastolic_mmhg"]) == (2, 135.0, 85.0)
    assert (d2["glucose_readings"], d2["glucose_mean_mg_dl"], d2["glucose_tir_pct"]) == (2, 160.0, 100.0)
    assert d2["bp_readings"] == 0 and d2["bp_mean_systolic_mmhg"] is None

    utc = client.get("/v1/me/daily", params={"from": "2026-03-03", "to": "2026-03-04", "time_zone": "UTC"},
                     headers=account.auth).json()
    assert {d["day"]: d["glucose_readings"] for d in utc["days"]} == {"2026-03-03": 2, "2026-03-04": 2}


def test_summary_classifies_bp_by_the_stored_guideline(client: TestClient, account: Account,
                                                       writer: Writer) -> None:
    writer.blood_pressure([(datetime.now(UTC), 135, 85)])
    default = client.get("/v1/me/summary", headers=account.auth).json()["blood_pressure"]
    assert (default["guideline"], default["category"]) == ("acc_aha_2017", "stage_1_hypertension")

    writer.profile("Europe/Berlin", "esc_esh_2018")
    stored = client.get("/v1/me/summary", headers=account.auth).json()["blood_pressure"]
    assert (stored["guideline"], stored["category"]) == ("esc_esh_2018", "high_normal")

    # The query parameter still overrides the profile, for this request only.
    asked = client.get("/v1/me/summary", params={"bp_guideline": "acc_aha_2017"}, headers=account.auth).json()
    assert asked["blood_pressure"]["guideline"] == "acc_aha_2017"
    assert client.get("/v1/me/summary", headers=account.auth).json()["blood_pressure"]["guideline"] == "esc_esh_2018"

    writer.profile("Europe/Berlin", None)  # back to the deployment's guideline
    assert client.get("/v1/me/summary", headers=account.auth).json()["blood_pressure"]["guideline"] == "acc_aha_2017"


def test_days_are_read_in_the_profile_zone_before_the_recorded_one(client: TestClient, account: Account,
                                                                  writer: Writer) -> None:
    # The worker counted earlier days in UTC; the profile now says New York (UTC-5 in early March).
    writer.daily_totals(date(2026, 3, 2), "UTC")
    writer.glucose([(datetime(2026, 3, 4, 3, tzinfo=UTC), 100.0)])  # the 3rd in New York, the 4th in UTC
    window = {"from": "2026-03-03", "to": "2026-03-04"}
    recorded = client.get("/v1/me/daily", params=window, headers=account.auth).json()
    assert recorded["time_zone"] == "UTC"
    assert [d["day"] for d in recorded["days"]] == ["2026-03-04"]

    writer.profile("America/New_York", None)
    local = client.get("/v1/me/daily", params=window, headers=account.auth).json()
    assert local["time_zone"] == "America/New_York"
    assert [d["day"] for d in local["days"]] == ["2026-03-03"]
    agp = client.get("/v1/me/agp", headers=account.auth).json()
    assert agp["time_zone"] == "America/New_York"

    asked = client.get("/v1/me/daily", params={**window, "time_zone": "UTC"}, headers=account.auth).json()
    assert [d["day"] for d in asked["days"]] == ["2026-03-04"]


def test_daily_checks_its_range_and_zone(client: TestClient, account: Account) -> None:
    backwards = client.get("/v1/me/daily", params={"from": "2026-03-05", "to": "2026-03-01"}, headers=account.auth)
    assert backwards.status_code == 422
    assert backwards.json()["error"]["fields"][0]["rule"] == "from_not_after_to"
    too_long = client.get("/v1/me/daily", params={"from": "2020-01-01", "to": "2026-01-01"}, headers=account.auth)
    assert too_long.json()["error"]["fields"][0]["rule"] == "range_too_long"
    zone = client.get("/v1/me/daily", params={"time_zone": "../../etc/passwd"}, headers=account.auth)
    assert zone.status_code == 422
    assert zone.json()["error"]["fields"][0]["field"] == "query.time_zone"
    default = client.get("/v1/me/daily", headers=account.auth).json()
    assert (date.fromisoformat(default["last_day"]) - date.fromisoformat(default["first_day"])).days == 13


def test_weekly_sums_iso_weeks(client: TestClient, account: Account, writer: Writer) -> None:
    # 2026-03-01 is a Sunday (ISO week 9 of 2026); 2026-03-02 starts week 10.
    for offset in range(8):
        writer.daily_totals(date(2026, 3, 1) + timedelta(days=offset), "UTC", carbs_g=100.0 + offset, steps=1000,
                            meals=2)
    body = client.get("/v1/me/weekly", params={"from": "2026-02-23", "to": "2026-03-15"},
                      headers=account.auth).json()
    assert [(w["iso_year"], w["iso_week"], w["week_start"], w["days"]) for w in body["weeks"]] == [
        (2026, 9, "2026-02-23", 1), (2026, 10, "2026-03-02", 7)]
    assert body["weeks"][1]["carbs_g"] == sum(100.0 + o for o in range(1, 8))
    assert body["weeks"][1]["steps"] == 7000 and body["weeks"][1]["meals"] == 14


def test_readings_are_paged_newest_first_with_cursors(client: TestClient, account: Account, writer: Writer) -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    # Two readings share each time stamp: the event id breaks the tie, so none is skipped or repeated.
    written = writer.glucose([(start + timedelta(minutes=5 * (i // 2)), 100.0 + i) for i in range(25)])
    expected = sorted(((r["occurred_at"], r["event_id"]) for r in written), reverse=True)

    seen: list[tuple[datetime, str]] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 10}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/me/readings/glucose", params=params, headers=account.auth).json()
        pages += 1
        seen += [(datetime.fromisoformat(i["occurred_at"]), i["event_id"]) for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == [(at, str(event_id)) for at, event_id in expected]


def test_reading_pages_of_each_kind_hide_internal_columns(client: TestClient, account: Account,
                                                          writer: Writer) -> None:
    at = datetime(2026, 3, 1, 8, tzinfo=UTC)
    writer.blood_pressure([(at, 128, 82)])
    writer.hba1c([(at, 6.1)])
    writer.exercise([(at, 40.0)])
    writer.meals([(at, 55.0)])
    bp = client.get("/v1/me/readings/bp", headers=account.auth).json()["items"]
    assert [(i["systolic_mmhg"], i["diastolic_mmhg"]) for i in bp] == [(128, 82)]
    assert client.get("/v1/me/readings/hba1c", headers=account.auth).json()["items"][0]["hba1c_pct"] == 6.1
    assert client.get("/v1/me/readings/exercise", headers=account.auth).json()["items"][0]["duration_min"] == 40.0
    meal = client.get("/v1/me/readings/meals", headers=account.auth).json()["items"][0]
    assert meal["carbs_g"] == 55.0 and meal["photo_sha256"] == "ab" * 32
    assert "photo_object_key" not in meal and "user_id" not in meal


@pytest.mark.parametrize("cursor", ["not-a-cursor", "bm90aGluZw", "MjAyNi0wMy0wMXx4"])
def test_a_forged_cursor_is_a_clear_422(client: TestClient, account: Account, cursor: str) -> None:
    response = client.get("/v1/me/readings/glucose", params={"cursor": cursor}, headers=account.auth)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0] == {
        "field": "query.cursor", "rule": "cursor", "message": "not a cursor from a previous page's next_cursor"}


def test_new_york_days_are_utc_minus_five_in_march() -> None:
    # Guards the daily test's arithmetic: DST in New York starts on 2026-03-08.
    assert datetime(2026, 3, 4, 3, tzinfo=UTC).astimezone(NEW_YORK).date() == date(2026, 3, 3)
