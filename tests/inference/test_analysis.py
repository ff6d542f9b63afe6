"""Model outputs → meal analysis: the food decision, the dish ranking and the nutrition estimate."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pytest

from inference_consumer import analysis
from inference_consumer.analysis import ImageOutputs, analyse, meal_analyzed, split_batch
from inference_consumer.consumer import packaged_dish_labels
from inference_consumer.models import glue, labels, nutrition
from producers.photos import photo_ref
from schemas.events import MealLogged
from schemas.meal_analysis import ModelVersion, analysis_id

LABELS = packaged_dish_labels()


def _dishes(**probabilities: float) -> tuple[float, ...]:
    values = [0.0] * len(LABELS)
    for label, p in probabilities.items():
        values[LABELS.index(label.replace("_", " "))] = p
    return tuple(values)


def _outputs(food_prob: float, imagenet: float, dishes: tuple[float, ...],
             gate: tuple[float, float, float] | None = None) -> ImageOutputs:
    return ImageOutputs(food_prob, gate or (food_prob, 0.0, 1 - food_prob), dishes, imagenet)


def test_the_output_interface_is_the_models() -> None:
    assert analysis.OUTPUT_WIDTHS == glue.OUTPUT_WIDTHS
    assert analysis.SCENES == labels.GATE_LABELS
    assert len(LABELS) == analysis.OUTPUT_WIDTHS[analysis.DISH_PROBS]
    assert set(LABELS) == set(nutrition.table()), "every dish the model names has a nutrition row"


def test_a_plated_meal_is_food_with_its_likeliest_dishes_and_a_portion_of_the_first() -> None:
    found = analyse(_outputs(0.91, 0.74, _dishes(plate=0.40, guacamole=0.20, hot_pot=0.16, pizza=0.05)), LABELS)
    assert found.is_food and found.scene == "food"
    assert found.food_score == pytest.approx(0.91)
    assert [(f.label, f.confidence) for f in found.top_foods] == [("plate", 0.40), ("guacamole", 0.20),
                                                                 ("hot pot", 0.16)]
    assert found.portion == nutrition.lookup("plate").portion()


def test_a_drink_the_gate_doubts_is_food_when_imagenet_is_sure() -> None:
    # The espresso photo: gate 0.28 (it learned meals), ImageNet 0.97 on food classes.
    found = analyse(_outputs(0.28, 0.97, _dishes(espresso=0.92, consomme=0.06, cup=0.014),
                             gate=(0.28, 0.02, 0.70)), LABELS)
    assert found.is_food and found.food_score == pytest.approx(0.97)
    assert found.scene == "other", "the gate's own opinion is kept"
    assert found.top_foods[0].label == "espresso"
    assert found.portion is not None and found.portion.label == "espresso"


def test_a_photo_neither_model_calls_food_has_no_dishes_and_no_estimate() -> None:
    found = analyse(_outputs(0.016, 0.0004, _dishes(red_wine=0.31, ear=0.30), gate=(0.016, 0.93, 0.05)), LABELS)
    assert not found.is_food and found.scene == "report"
    assert found.top_foods == () and found.portion is None
    assert found.gate_food_prob == pytest.approx(0.016) and found.imagenet_food_score == pytest.approx(0.0004)


def test_the_threshold_is_inclusive_and_configurable() -> None:
    outputs = _outputs(0.5, 0.1, _dishes(pizza=1.0))
    assert analyse(outputs, LABELS).is_food
    assert not analyse(outputs, LABELS, threshold=0.6).is_food


def test_ties_keep_the_models_label_order_so_the_same_outputs_give_the_same_list() -> None:
    found = analyse(_outputs(0.9, 0.9, _dishes(pizza=0.5, bagel=0.5)), LABELS, top_k=2)
    assert [f.label for f in found.top_foods] == sorted(["pizza", "bagel"], key=LABELS.index)


def test_float_rounding_past_one_is_clipped_but_nonsense_is_refused() -> None:
    found = analyse(_outputs(1.00001, 0.5, _dishes(pizza=1.00002)), LABELS)
    assert found.food_score == 1.0 and found.top_foods[0].confidence == 1.0
    with pytest.raises(ValueError, match="food_prob must be a probability"):
        analyse(_outputs(math.nan, 0.5, _dishes(pizza=1.0)), LABELS)
    with pytest.raises(ValueError, match="dish_probs must be a probability"):
        analyse(_outputs(0.9, 0.5, _dishes(pizza=1.7)), LABELS)
    with pytest.raises(ValueError, match="47 labels for 48 dish_probs"):
        analyse(_outputs(0.9, 0.5, _dishes(pizza=1.0)), LABELS[:-1])


def test_split_batch_gives_one_row_per_image_and_names_a_bad_output() -> None:
    batch = {"food_prob": np.array([[0.9], [0.1]], np.float32), "gate_probs": np.full((2, 3), 1 / 3, np.float32),
             "dish_probs": np.full((2, 48), 1 / 48, np.float32),
             "food_score_imagenet": np.array([[0.8], [0.0]], np.float32)}
    rows = split_batch(batch)
    assert [r.food_prob for r in rows] == pytest.approx([0.9, 0.1])
    assert len(rows[1].dish_probs) == 48
    with pytest.raises(ValueError, match="dish_probs has shape"):
        split_batch({**batch, "dish_probs": np.zeros((2, 47), np.float32)})
    with pytest.raises(ValueError, match="gate_probs missing"):
        split_batch({k: v for k, v in batch.items() if k != "gate_probs"})


def _meal(photo: bool = True) -> MealLogged:
    return MealLogged(user_id="user-7", device_id="phone", source="app",
                      occurred_at=datetime(2026, 3, 1, 12, tzinfo=UTC), meal_slot="lunch",
                      photo=photo_ref("meal-photos/user-7/a.jpg", b"jpeg bytes") if photo else None)


def test_the_event_carries_the_meal_envelope_and_a_deterministic_id() -> None:
    meal = _meal()
    found = analyse(_outputs(0.9, 0.8, _dishes(pizza=0.7, bagel=0.3)), LABELS)
    models = [ModelVersion(name="meal_analyzer", version="1")]
    now = datetime.now(UTC)
    event = meal_analyzed(meal, found, models, inference_ms=80.0, latency_ms=120.5, analysed_at=now)
    assert (event.user_id, event.device_id, event.source, event.occurred_at) == (
        meal.user_id, meal.device_id, meal.source, meal.occurred_at)
    assert event.received_at == now and event.meal_event_id == meal.event_id
    assert meal.photo is not None and event.photo_sha256 == meal.photo.sha256
    assert event.event_id == analysis_id(meal.event_id, meal.photo.sha256, models)
    portion = nutrition.lookup("pizza").portion()
    assert (event.estimate_label, event.portion_g, event.energy_kcal) == ("pizza", portion.weight_g,
                                                                         round(portion.kcal, 1))
    again = meal_analyzed(meal, found, models, inference_ms=3.0, latency_ms=9.0, analysed_at=datetime.now(UTC))
    assert again.event_id == event.event_id, "re-analysis with the same models is the same event"


def test_a_meal_without_a_photo_is_refused() -> None:
    found = analyse(_outputs(0.9, 0.8, _dishes(pizza=1.0)), LABELS)
    with pytest.raises(ValueError, match="photo is missing"):
        meal_analyzed(_meal(photo=False), found, [ModelVersion(name="m", version="1")], 1.0, 1.0, datetime.now(UTC))
