"""Contract tests: every event kind accepts good payloads and rejects each kind of bad one, naming the field."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from schemas.codec import ContractError, decode, encode
from schemas.events import (
    BloodPressureReading,
    ExerciseSession,
    GlucoseReading,
    HbA1cResult,
    MealLogged,
)
from schemas.export import export_json_schemas
from schemas.meal_analysis import MealAnalyzed
from schemas.topics import MEALS, READINGS, TOPICS, USER_PARTITIONS, Topic
from schemas.units import (
    MG_DL_PER_MMOL_L,
    hba1c_mmol_mol_to_pct,
    hba1c_pct_to_mmol_mol,
    mg_dl_to_mmol_l,
    mmol_l_to_mg_dl,
)

Payload = dict[str, Any]


def envelope(**fields: Any) -> Payload:
    return {
        "event_id": "0b9c6f2e-8c1e-4d8e-9f33-1d7f3b4a2c10",
        "user_id": "user-1",
        "device_id": "dexcom-g6-abc",
        "source": "device",
        "occurred_at": "2024-03-01T08:00:00+01:00",
        "received_at": "2024-03-01T07:00:05Z",
        **fields,
    }


GOOD: dict[str, Payload] = {
    "glucose": envelope(type="glucose", unit="mg/dL", value=142, kind="cgm", trend="Flat"),
    "glucose_mmol": envelope(type="glucose", unit="mmol/L", value=7.9, kind="fingerstick", meal_context="fasting"),
    "blood_pressure": envelope(type="blood_pressure", systolic_mmhg=128, diastolic_mmhg=82, pulse_bpm=71,
                               arm="left", position="sitting"),
    "hba1c": envelope(type="hba1c", unit="%", value=6.8),
    "hba1c_ifcc": envelope(type="hba1c", unit="mmol/mol", value=51),
    "exercise": envelope(type="exercise", activity="walking", duration_min=35, energy_kcal=160, steps=4200,
                         mean_heart_rate_bpm=104),
}
GOOD_MEAL = envelope(type="meal", meal_slot="lunch", energy_kcal=640, carbs_g=72, protein_g=28, fat_g=22,
                     photo={"object_key": "meals/user-1/abc.jpg", "sha256": "a" * 64,
                            "content_type": "image/jpeg", "size_bytes": 48213})


def as_bytes(payload: Payload) -> bytes:
    return json.dumps(payload).encode()


def rejected(topic: Topic, payload: Payload | bytes) -> list[str]:
    data = payload if isinstance(payload, bytes) else as_bytes(payload)
    with pytest.raises(ContractError) as info:
        decode(topic, data)
    return info.value.problems


@pytest.mark.parametrize("name", sorted(GOOD))
def test_good_readings_are_accepted_and_round_trip(name: str) -> None:
    event = decode(READINGS, as_bytes(GOOD[name]))
    assert event.type == GOOD[name]["type"]
    assert decode(READINGS, encode(event)) == event


@pytest.mark.parametrize("occurred_at", ["2024-03-01T20:00:00+14:00", "2024-02-29T18:00:00-12:00",
                                         "2024-03-01T12:30:00+05:45"])
def test_every_civil_utc_offset_is_accepted(occurred_at: str) -> None:
    event = decode(READINGS, json.dumps(with_(occurred_at=occurred_at)(GOOD["glucose"])).encode())
    assert event.occurred_at == datetime.fromisoformat(occurred_at)


def test_good_meal_is_accepted_and_round_trips() -> None:
    meal = decode(MEALS, as_bytes(GOOD_MEAL))
    assert isinstance(meal, MealLogged)
    assert meal.photo is not None and meal.photo.size_bytes == 48213
    assert decode(MEALS, encode(meal)) == meal


def test_glucose_is_mg_dl_inside_the_system() -> None:
    mmol = decode(READINGS, as_bytes(GOOD["glucose_mmol"]))
    assert isinstance(mmol, GlucoseReading)
    assert mmol.glucose_mg_dl == pytest.approx(7.9 * 18.01559)
    mg = decode(READINGS, as_bytes(GOOD["glucose"]))
    assert mg.glucose_mg_dl == 142


def test_hba1c_in_ifcc_units_converts_to_percent() -> None:
    result = decode(READINGS, as_bytes(GOOD["hba1c_ifcc"]))
    assert isinstance(result, HbA1cResult)
    # IFCC 51 mmol/mol is NGSP 6.8 % (10.929 × (6.8 − 2.15) = 50.8)
    assert result.hba1c_pct == pytest.approx(6.82, abs=0.01)


def test_unit_conversions_are_inverse() -> None:
    assert MG_DL_PER_MMOL_L == 18.01559
    assert mg_dl_to_mmol_l(mmol_l_to_mg_dl(5.5)) == pytest.approx(5.5)
    assert hba1c_pct_to_mmol_mol(6.5) == pytest.approx(47.54, abs=0.01)
    assert hba1c_mmol_mol_to_pct(hba1c_pct_to_mmol_mol(7.3)) == pytest.approx(7.3)


Mutation = Callable[[Payload], Payload]


def with_(**changes: Any) -> Mutation:
    return lambda p: {**p, **changes}


def without(field: str) -> Mutation:
    return lambda p: {k: v for k, v in p.items() if k != field}


# (case, good payload, mutation, field that must be named, words the message must contain)
BAD_READINGS: list[tuple[str, str, Mutation, str, str]] = [
    ("mmol value sent as mg/dL", "glucose", with_(value=6.5), "value", "is the unit mmol/L"),
    ("mg/dL value sent as mmol/L", "glucose_mmol", with_(value=140), "value", "is the unit mg/dL"),
    ("glucose too low", "glucose", with_(value=5, unit="mg/dL"), "value", "10–1000 mg/dL"),
    ("glucose too high", "glucose", with_(value=1200), "value", "10–1000 mg/dL"),
    ("unknown glucose unit", "glucose", with_(unit="mg/L"), "unit", "mg/dL"),
    ("unknown glucose kind", "glucose", with_(kind="implant"), "kind", "cgm"),
    ("unknown meal context", "glucose", with_(meal_context="lunch"), "meal_context", "fasting"),
    ("systolic not above diastolic", "blood_pressure", with_(systolic_mmhg=80, diastolic_mmhg=95),
     "diastolic_mmhg", "lower than systolic"),
    ("systolic impossible", "blood_pressure", with_(systolic_mmhg=400), "systolic_mmhg", "300"),
    ("diastolic impossible", "blood_pressure", with_(diastolic_mmhg=10), "diastolic_mmhg", "20"),
    ("pulse impossible", "blood_pressure", with_(pulse_bpm=400), "pulse_bpm", "250"),
    ("hba1c above 20 %", "hba1c", with_(value=25), "value", "3–20 %"),
    ("hba1c below 3 %", "hba1c", with_(value=2.5), "value", "3–20 %"),
    ("hba1c % sent as mmol/mol", "hba1c_ifcc", with_(value=6.8), "value", "3–20 %"),
    ("zero exercise duration", "exercise", with_(duration_min=0), "duration_min", "greater than 0"),
    ("negative steps", "exercise", with_(steps=-5), "steps", "greater than or equal to 0"),
    ("naive occurred_at", "glucose", with_(occurred_at="2024-03-01T08:00:00"), "occurred_at", "timezone"),
    ("naive received_at", "blood_pressure", with_(received_at="2024-03-01 07:00:05"), "received_at", "timezone"),
    ("offset no zone uses", "glucose", with_(occurred_at="2024-03-01T08:00:00+20:00"), "occurred_at",
     "-12:00 and +14:00"),
    ("received_at offset", "glucose", with_(received_at="2024-03-01T07:00:05-15:00"), "received_at",
     "-12:00 and +14:00"),
    ("before 1900", "hba1c", with_(occurred_at="1899-12-31T23:00:00Z"), "occurred_at", "1900-01-01"),
    ("from the future", "glucose", with_(occurred_at="2024-03-02T08:00:00Z"), "occurred_at", "later than received_at"),
    ("unknown field", "glucose", with_(glucose_mmol=7.0), "glucose_mmol", "Extra inputs are not permitted"),
    ("number as string", "glucose", with_(value="142"), "value", "valid number"),
    ("bool as integer", "blood_pressure", with_(pulse_bpm=True), "pulse_bpm", "valid integer"),
    ("string as float", "exercise", with_(duration_min="35"), "duration_min", "valid number"),
    ("bad event id", "hba1c", with_(event_id="not-a-uuid"), "event_id", "UUID"),
    ("missing user", "glucose", without("user_id"), "user_id", "Field required"),
    ("empty user", "glucose", with_(user_id=""), "user_id", "at least 1"),
    ("control character in user", "glucose", with_(user_id="a\nb"), "user_id", "pattern"),
    ("unknown source", "glucose", with_(source="fax"), "source", "device"),
    ("other schema version", "glucose", with_(schema_version=2), "schema_version", "1"),
]


@pytest.mark.parametrize(("case", "base", "mutate", "field", "words"), BAD_READINGS,
                         ids=[c[0] for c in BAD_READINGS])
def test_bad_readings_are_rejected_naming_the_field(case: str, base: str, mutate: Mutation, field: str,
                                                    words: str) -> None:
    problems = rejected(READINGS, mutate(GOOD[base]))
    named = [p for p in problems if p.split(":")[0].split(".")[-1] == field]
    assert named, f"{case}: no problem names {field!r}: {problems}"
    assert any(words in p for p in named), f"{case}: {words!r} not in {named}"


BAD_MEALS: list[tuple[str, Mutation, str, str]] = [
    ("negative carbs", with_(carbs_g=-1), "carbs_g", "greater than or equal to 0"),
    ("absurd energy", with_(energy_kcal=50_000), "energy_kcal", "10000"),
    ("unknown slot", with_(meal_slot="brunch"), "meal_slot", "breakfast"),
    ("photo hash not sha256", with_(photo={**GOOD_MEAL["photo"], "sha256": "xyz"}), "sha256", "pattern"),
    ("svg photo", with_(photo={**GOOD_MEAL["photo"], "content_type": "image/svg+xml"}), "content_type", "image/jpeg"),
    ("empty photo", with_(photo={**GOOD_MEAL["photo"], "size_bytes": 0}), "size_bytes", "greater than 0"),
    ("path traversal key", with_(photo={**GOOD_MEAL["photo"], "object_key": "../../etc/passwd x"}), "object_key",
     "pattern"),
]


@pytest.mark.parametrize(("case", "mutate", "field", "words"), BAD_MEALS, ids=[c[0] for c in BAD_MEALS])
def test_bad_meals_are_rejected_naming_the_field(case: str, mutate: Mutation, field: str, words: str) -> None:
    problems = rejected(MEALS, mutate(GOOD_MEAL))
    assert any(p.split(":")[0].split(".")[-1] == field and words in p for p in problems), problems


def test_unknown_event_type_and_garbage_are_rejected() -> None:
    assert "type" in rejected(READINGS, with_(type="insulin")(GOOD["glucose"]))[0]
    assert "Invalid JSON" in rejected(READINGS, b"\xff\x00 not json")[0]
    # A meal is not a reading: the readings topic's union does not include it.
    assert rejected(READINGS, GOOD_MEAL)


def test_every_problem_is_reported_not_just_the_first() -> None:
    problems = rejected(READINGS, with_(systolic_mmhg=999, pulse_bpm=1, color="red")(GOOD["blood_pressure"]))
    fields = {p.split(":")[0].split(".")[-1] for p in problems}
    assert {"systolic_mmhg", "pulse_bpm", "color"} <= fields


def test_models_built_in_python_are_validated_too() -> None:
    now = datetime.now(UTC)
    with pytest.raises(ValueError, match="diastolic_mmhg"):
        BloodPressureReading(user_id="u", device_id="d", source="device", occurred_at=now,
                             systolic_mmhg=110, diastolic_mmhg=120)
    session = ExerciseSession(user_id="u", device_id="d", source="app", occurred_at=now,
                              activity="cycling", duration_min=30)
    assert session.ended_at == now + timedelta(minutes=30)


def test_topic_registry_is_co_partitioned_and_keyed_by_user() -> None:
    user_topics = [t for t in TOPICS.values() if t.key == "user_id"]
    assert {t.name for t in user_topics} >= {READINGS.name, MEALS.name}
    assert {t.partitions for t in user_topics} == {USER_PARTITIONS}
    for topic in TOPICS.values():
        assert topic.config()["cleanup.policy"] in {"delete", "compact"}
        assert int(topic.config()["retention.ms"]) > 0


def test_json_schemas_are_written_and_describe_the_rules(tmp_path: Path) -> None:
    paths = export_json_schemas(tmp_path)
    names = {p.name for p in paths}
    assert names == {f"{m}.v1.schema.json" for m in
                     ("GlucoseReading", "BloodPressureReading", "HbA1cResult", "ExerciseSession", "MealLogged",
                      "MealAnalyzed")}
    bp = json.loads((tmp_path / "BloodPressureReading.v1.schema.json").read_text())
    assert bp["additionalProperties"] is False
    assert bp["properties"]["systolic_mmhg"]["maximum"] == 300
    assert "occurred_at" in bp["required"]


def test_the_meal_analysis_schema_accepts_what_the_consumer_publishes(tmp_path: Path) -> None:
    export_json_schemas(tmp_path)
    schema = json.loads((tmp_path / "MealAnalyzed.v1.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    analysis = MealAnalyzed(
        user_id="u", device_id="phone", source="app", occurred_at=datetime(2026, 3, 1, 12, tzinfo=UTC),
        meal_event_id="0b9f6f5e-3c1a-4d2b-9e8f-7a6b5c4d3e2f", photo_sha256="ab" * 32, is_food=True, food_score=0.9,
        gate_food_prob=0.9, imagenet_food_score=0.7, scene="food", top_foods=[{"label": "pizza", "confidence": 0.8}],
        estimate_label="pizza", portion_g=107.0, energy_kcal=285.0, carbs_g=35.7, protein_g=12.2, fat_g=10.4,
        models=[{"name": "meal_analyzer", "version": "1"}], inference_ms=80.0, latency_ms=130.0)
    published = json.loads(encode(analysis))
    assert list(validator.iter_errors(published)) == []

    assert schema["additionalProperties"] is False
    assert {"meal_event_id", "photo_sha256", "is_food", "models"} <= set(schema["required"])
    bad = {**published, "food_score": 1.5, "photo_sha256": "not-a-digest", "models": []}
    assert {error.path[0] for error in validator.iter_errors(bad)} == {"food_score", "photo_sha256", "models"}
