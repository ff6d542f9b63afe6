"""Nightscout documents → events, and rows → documents: the mapping rules on their own, without services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from uuid import uuid4

import pytest

from api.errors import ApiError
from api.nightscout import TREND_CODES, entry_document, map_entry, map_treatment, meal_slot
from schemas.events import GlucoseReading, MealLogged, MealSlot, Trend

NOW = datetime.now(UTC).replace(microsecond=0)
DATE_MS = round((NOW - timedelta(minutes=5)).timestamp() * 1000)


def entry(**fields: object) -> dict[str, object]:
    return {"type": "sgv", "sgv": 120, "date": DATE_MS} | fields


@pytest.mark.parametrize(("fields", "trend"), [
    ({"direction": "DoubleUp"}, Trend.DOUBLE_UP),
    ({"direction": "NOT COMPUTABLE"}, Trend.NOT_COMPUTABLE),  # Nightscout's spelling
    ({"direction": "RateOutOfRange"}, Trend.RATE_OUT_OF_RANGE),  # Loop's spelling
    ({"trend": 7}, Trend.DOUBLE_DOWN),  # Dexcom's number, no direction
    ({"trend": "5"}, Trend.FORTY_FIVE_DOWN),  # … sent as a string since 2021
    ({"direction": "NONE"}, None),  # xDrip+ without a trend
    ({}, None),
])
def test_trend_comes_from_direction_or_the_dexcom_number(fields: dict[str, object], trend: Trend | None) -> None:
    (event,) = map_entry(entry(**fields), 0, "u", NOW).events
    assert isinstance(event, GlucoseReading) and event.trend is trend


def test_trend_codes_run_from_double_up_to_rate_out_of_range() -> None:
    assert [TREND_CODES[i] for i in (1, 4, 9)] == [Trend.DOUBLE_UP, Trend.FLAT, Trend.RATE_OUT_OF_RANGE]


def test_the_event_id_is_user_type_and_date() -> None:
    first = map_entry(entry(sgv=120), 0, "u", NOW)
    corrected = map_entry(entry(sgv=125, device="other"), 3, "u", NOW + timedelta(seconds=30))
    meter = map_entry(entry(type="mbg", mbg=120), 0, "u", NOW)
    someone_else = map_entry(entry(), 0, "v", NOW)
    assert first.events[0].event_id == corrected.events[0].event_id
    assert len({first.events[0].event_id, meter.events[0].event_id, someone_else.events[0].event_id}) == 3
    assert first.document["_id"] == str(first.events[0].event_id)


def test_time_comes_from_date_else_the_date_string_with_its_offset() -> None:
    local = (NOW - timedelta(hours=1)).astimezone(timezone(timedelta(hours=-8)))
    by_string = map_entry({"type": "sgv", "sgv": 100, "dateString": local.strftime("%Y-%m-%dT%H:%M:%S.000%z")},
                          0, "u", NOW)
    assert by_string.events[0].occurred_at == NOW - timedelta(hours=1)
    fractional = map_entry(entry(date=DATE_MS + 0.4), 0, "u", NOW)  # Loop sends a Double
    assert fractional.events[0].event_id == map_entry(entry(), 0, "u", NOW).events[0].event_id


def test_type_is_inferred_from_the_value_field() -> None:
    (event,) = map_entry({"mbg": 99, "date": DATE_MS}, 0, "u", NOW).events
    assert isinstance(event, GlucoseReading) and event.kind.value == "fingerstick"


@pytest.mark.parametrize(("document", "field", "rule"), [
    ({"type": "sgv", "sgv": 100}, "4.date", "missing"),
    ({"type": "sgv", "date": DATE_MS}, "4.sgv", "missing"),
    ({"date": DATE_MS}, "4.type", "missing"),
    ({"type": "sgv", "sgv": 100, "dateString": "last tuesday"}, "4.dateString", "datetime_format"),
    ({"type": "sgv", "sgv": [1], "date": DATE_MS}, "4.sgv", "float_type"),
    ("sgv 100", "4.(document)", "dict_type"),
])
def test_malformed_entries_name_the_field(document: object, field: str, rule: str) -> None:
    with pytest.raises(ApiError) as raised:
        map_entry(document, 4, "u", NOW)
    assert raised.value.status_code == 422
    assert (raised.value.fields[0].field, raised.value.fields[0].rule) == (field, rule)


def test_other_entry_types_and_implausible_values_are_echoed_without_events() -> None:
    calibration = map_entry({"type": "cal", "date": DATE_MS, "slope": 900, "intercept": 3000}, 0, "u", NOW)
    error_code = map_entry(entry(sgv=5), 0, "u", NOW)
    assert calibration.events == () and calibration.document["slope"] == 900
    assert error_code.events == () and error_code.document["_id"]


@pytest.mark.parametrize(("hour", "event_type", "slot"), [
    (7, "Meal Bolus", MealSlot.BREAKFAST), (12, "Carb Correction", MealSlot.LUNCH), (19, "<none>", MealSlot.DINNER),
    (23, "Carb Correction", MealSlot.SNACK), (3, None, MealSlot.SNACK), (12, "Snack Bolus", MealSlot.SNACK),
])
def test_the_meal_slot_follows_the_local_hour(hour: int, event_type: str | None, slot: MealSlot) -> None:
    assert meal_slot(event_type, datetime(2026, 3, 1, hour, 15, tzinfo=timezone(timedelta(hours=5)))) is slot


def test_a_treatment_keeps_its_local_hour_and_its_uploader_id() -> None:
    created_at = (NOW - timedelta(days=1)).replace(hour=8).astimezone(timezone(timedelta(hours=1)))
    sync_id = uuid4().hex
    document = {"eventType": "Meal Bolus", "carbs": 30, "insulin": 3, "syncIdentifier": sync_id,
                "created_at": created_at.replace(hour=8).isoformat()}
    first, again = map_treatment(document, 0, "u", NOW), map_treatment(document | {"carbs": 35}, 0, "u", NOW)
    (meal,) = first.events
    assert isinstance(meal, MealLogged) and meal.meal_slot is MealSlot.BREAKFAST and meal.carbs_g == 30
    assert again.events[0].event_id == meal.event_id  # the same treatment, edited


def test_treatments_without_carbs_exercise_or_glucose_become_nothing() -> None:
    bolus = map_treatment({"eventType": "Correction Bolus", "insulin": 2, "created_at": NOW.isoformat()}, 0, "u", NOW)
    zero_carbs = map_treatment({"eventType": "Meal Bolus", "carbs": 0, "timestamp": DATE_MS}, 0, "u", NOW)
    assert bolus.events == () == zero_carbs.events
    assert bolus.document_id != zero_carbs.document_id


def test_a_row_becomes_the_entry_nightscout_would_return() -> None:
    at = datetime(2026, 3, 1, 10, 0, 0, 250_000, tzinfo=UTC)
    event_id = uuid4()
    cgm = SimpleNamespace(event_id=event_id, occurred_at=at, device_id="g7", glucose_mg_dl=143.6, kind="cgm",
                          trend="FortyFiveUp")
    assert entry_document(cgm) == {
        "_id": str(event_id), "device": "g7", "date": 1772359200250, "mills": 1772359200250,
        "dateString": "2026-03-01T10:00:00.250Z", "sysTime": "2026-03-01T10:00:00.250Z", "utcOffset": 0,
        "type": "sgv", "sgv": 144, "direction": "FortyFiveUp", "trend": 3}
    meter = SimpleNamespace(event_id=event_id, occurred_at=at, device_id="m", glucose_mg_dl=99.4,
                            kind="fingerstick", trend=None)
    assert (entry_document(meter)["type"], entry_document(meter)["mbg"]) == ("mbg", 99)
