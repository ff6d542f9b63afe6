"""The MealAnalyzed contract: the envelope, a deterministic id, and estimates only for food."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from schemas.codec import ContractError, decode, encode
from schemas.events import Event
from schemas.meal_analysis import MealAnalyzed, ModelVersion, analysis_id
from schemas.topics import MEAL_ANALYSES, MEALS, TOPICS, USER_PARTITIONS

MEAL_ID = uuid.UUID("0b9f6f5e-3c1a-4d2b-9e8f-7a6b5c4d3e2f")
SHA = "ab" * 32


def _fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "user_id": "user-1", "device_id": "phone", "source": "app", "occurred_at": datetime(2026, 3, 1, 12, tzinfo=UTC),
        "meal_event_id": MEAL_ID, "photo_sha256": SHA, "is_food": True, "food_score": 0.9, "gate_food_prob": 0.9,
        "imagenet_food_score": 0.7, "scene": "food", "top_foods": [{"label": "pizza", "confidence": 0.8}],
        "estimate_label": "pizza", "portion_g": 107.0, "energy_kcal": 285.0, "carbs_g": 35.7, "protein_g": 12.2,
        "fat_g": 10.4, "models": [{"name": "meal_analyzer", "version": "1"}], "inference_ms": 80.0,
        "latency_ms": 130.0,
    }
    fields.update(overrides)
    return fields


def test_it_is_an_event_on_its_own_co_partitioned_topic() -> None:
    assert issubclass(MealAnalyzed, Event)
    assert TOPICS[MEAL_ANALYSES.name] is MEAL_ANALYSES
    assert MEAL_ANALYSES.name == "vitalstream.meal-analyses"
    assert (MEAL_ANALYSES.partitions, MEAL_ANALYSES.key, MEAL_ANALYSES.cleanup_policy) == (USER_PARTITIONS, "user_id",
                                                                                           "delete")
    assert MEAL_ANALYSES.partitions == MEALS.partitions


def test_the_id_is_uuid5_of_meal_photo_and_models_whatever_their_order() -> None:
    event = MealAnalyzed(**_fields())
    expected = analysis_id(MEAL_ID, SHA, [ModelVersion(name="meal_analyzer", version="1")])
    assert event.event_id == expected and expected.version == 5
    two = [{"name": "b", "version": "2"}, {"name": "a", "version": "1"}]
    assert MealAnalyzed(**_fields(models=two)).event_id == MealAnalyzed(**_fields(models=two[::-1])).event_id
    assert MealAnalyzed(**_fields(models=[{"name": "meal_analyzer", "version": "2"}])).event_id != expected
    assert MealAnalyzed(**_fields(photo_sha256="cd" * 32)).event_id != expected


def test_it_round_trips_through_the_topic_codec() -> None:
    event = MealAnalyzed(**_fields())
    assert decode(MEAL_ANALYSES, encode(event)) == event


def test_a_foreign_id_is_refused() -> None:
    with pytest.raises(ValidationError, match="event_id must be uuid5"):
        MealAnalyzed(**_fields(event_id=uuid.uuid4()))
    tampered = encode(MealAnalyzed(**_fields())).replace(SHA.encode(), b"cd" * 32)
    with pytest.raises(ContractError, match="event_id must be uuid5"):
        decode(MEAL_ANALYSES, tampered)


def test_not_food_means_no_dishes_and_no_estimate() -> None:
    none = {"estimate_label": None, "portion_g": None, "energy_kcal": None, "carbs_g": None, "protein_g": None,
            "fat_g": None}
    MealAnalyzed(**_fields(is_food=False, top_foods=[], **none))
    with pytest.raises(ValidationError, match="must be empty when is_food is false"):
        MealAnalyzed(**_fields(is_food=False, top_foods=[]))
    with pytest.raises(ValidationError, match="top_foods must be empty"):
        MealAnalyzed(**_fields(is_food=False, **none))


def test_the_estimate_comes_whole_and_within_bounds() -> None:
    with pytest.raises(ValidationError, match="given together"):
        MealAnalyzed(**_fields(fat_g=None))
    with pytest.raises(ValidationError, match="energy_kcal"):
        MealAnalyzed(**_fields(energy_kcal=-1.0))
    with pytest.raises(ValidationError, match="confidence"):
        MealAnalyzed(**_fields(top_foods=[{"label": "pizza", "confidence": 1.5}]))
    with pytest.raises(ValidationError, match="models"):
        MealAnalyzed(**_fields(models=[]))
