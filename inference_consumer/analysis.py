"""meal_analyzer's outputs → a meal analysis: is it food, the likeliest dishes, one typical portion's nutrition. Pure.

Is it food: the larger of two opinions, the food/report/other gate's P(food) and the ImageNet classifier's
probability on its 48 food classes, must reach the threshold. Each model misses what the other sees: on the
fetched test photos the gate gives plated meals 0.82–0.91 but the espresso cup only 0.28 (it learned meals,
not drinks), while ImageNet gives the espresso 0.97; non-food photos (a cat, a street, lab reports) get at most
0.07 from the gate and 0.011 from ImageNet. The dishes are the classifier's food classes renormalised (their
`confidence` is a share of its food probability), and the estimate is one typical portion of the first.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from inference_consumer.models.nutrition import Nutrition, PortionNutrition, lookup
from schemas.events import MealLogged
from schemas.meal_analysis import FoodGuess, MealAnalyzed, ModelVersion, Scene

FOOD_PROB = "food_prob"
GATE_PROBS = "gate_probs"
DISH_PROBS = "dish_probs"
FOOD_SCORE_IMAGENET = "food_score_imagenet"
#: meal_analyzer's outputs and their width per image (config.pbtxt; a test holds this equal to the models').
OUTPUT_WIDTHS: dict[str, int] = {FOOD_PROB: 1, GATE_PROBS: 3, DISH_PROBS: 48, FOOD_SCORE_IMAGENET: 1}
#: The gate's classes, in output order.
SCENES: tuple[Scene, ...] = ("food", "report", "other")
FOOD_THRESHOLD = 0.5
TOP_K = 3
#: Float rounding lets a softmax output stray this far outside [0, 1].
_TOLERANCE = 1e-4


@dataclass(frozen=True)
class ImageOutputs:
    """One image's outputs (a row of each batch output)."""

    food_prob: float
    gate_probs: tuple[float, ...]
    dish_probs: tuple[float, ...]
    food_score_imagenet: float


@dataclass(frozen=True)
class Analysis:
    is_food: bool
    food_score: float
    gate_food_prob: float
    imagenet_food_score: float
    scene: Scene
    top_foods: tuple[FoodGuess, ...]
    portion: PortionNutrition | None


def split_batch(outputs: Mapping[str, NDArray[np.float32]]) -> list[ImageOutputs]:
    """Batch outputs ([N, width] each) → one ImageOutputs per image; ValueError naming a missing or odd output."""
    missing = [name for name in OUTPUT_WIDTHS if name not in outputs]
    if missing:
        raise ValueError(f"model outputs: {', '.join(missing)} missing (got {sorted(outputs)})")
    arrays = {name: np.asarray(outputs[name], dtype=np.float64) for name in OUTPUT_WIDTHS}
    count = len(arrays[FOOD_PROB])
    for name, width in OUTPUT_WIDTHS.items():
        if arrays[name].shape != (count, width):
            raise ValueError(f"model outputs: {name} has shape {arrays[name].shape}, expected ({count}, {width})")
    return [ImageOutputs(food_prob=float(arrays[FOOD_PROB][i, 0]),
                         gate_probs=tuple(arrays[GATE_PROBS][i].tolist()),
                         dish_probs=tuple(arrays[DISH_PROBS][i].tolist()),
                         food_score_imagenet=float(arrays[FOOD_SCORE_IMAGENET][i, 0]))
            for i in range(count)]


def _probability(name: str, value: float) -> float:
    if math.isnan(value) or not -_TOLERANCE <= value <= 1 + _TOLERANCE:
        raise ValueError(f"model outputs: {name} must be a probability in [0, 1], got {value}")
    return min(max(value, 0.0), 1.0)


def analyse(outputs: ImageOutputs, dish_labels: Sequence[str], threshold: float = FOOD_THRESHOLD,
            top_k: int = TOP_K, nutrition: Mapping[str, Nutrition] | None = None) -> Analysis:
    """What one image's outputs say. `dish_labels` names dish_probs' entries in order; `nutrition` defaults to
    the packaged table (inference_consumer.models.nutrition)."""
    if len(dish_labels) != len(outputs.dish_probs):
        raise ValueError(f"dish_labels: {len(dish_labels)} labels for {len(outputs.dish_probs)} dish_probs")
    if len(outputs.gate_probs) != len(SCENES):
        raise ValueError(f"model outputs: gate_probs has {len(outputs.gate_probs)} values, expected {len(SCENES)}")
    gate_food_prob = _probability(FOOD_PROB, outputs.food_prob)
    imagenet_food_score = _probability(FOOD_SCORE_IMAGENET, outputs.food_score_imagenet)
    gate = [_probability(GATE_PROBS, p) for p in outputs.gate_probs]
    dishes = [_probability(DISH_PROBS, p) for p in outputs.dish_probs]
    food_score = max(gate_food_prob, imagenet_food_score)
    scene = SCENES[int(np.argmax(gate))]
    if food_score < threshold:
        return Analysis(False, food_score, gate_food_prob, imagenet_food_score, scene, (), None)
    # A stable sort: equal probabilities keep the model's label order, so the same outputs give the same list.
    ranked = sorted(range(len(dishes)), key=lambda i: -dishes[i])[:top_k]
    top = tuple(FoodGuess(label=dish_labels[i], confidence=dishes[i]) for i in ranked)
    row = nutrition[top[0].label] if nutrition is not None else lookup(top[0].label)
    return Analysis(True, food_score, gate_food_prob, imagenet_food_score, scene, top, row.portion())


def meal_analyzed(meal: MealLogged, analysis: Analysis, models: Sequence[ModelVersion], inference_ms: float,
                  latency_ms: float, analysed_at: datetime) -> MealAnalyzed:
    """The event for one analysed photo of `meal` (which must carry a photo)."""
    if meal.photo is None:
        raise ValueError(f"meal {meal.event_id}: photo is missing; only meals with a photo are analysed")
    portion = analysis.portion
    return MealAnalyzed(
        user_id=meal.user_id, device_id=meal.device_id, source=meal.source, occurred_at=meal.occurred_at,
        received_at=analysed_at, meal_event_id=meal.event_id, photo_sha256=meal.photo.sha256,
        is_food=analysis.is_food, food_score=analysis.food_score, gate_food_prob=analysis.gate_food_prob,
        imagenet_food_score=analysis.imagenet_food_score, scene=analysis.scene, top_foods=list(analysis.top_foods),
        estimate_label=portion.label if portion else None, portion_g=portion.weight_g if portion else None,
        energy_kcal=round(portion.kcal, 1) if portion else None,
        carbs_g=round(portion.carbs_g, 1) if portion else None,
        protein_g=round(portion.protein_g, 1) if portion else None,
        fat_g=round(portion.fat_g, 1) if portion else None,
        models=list(models), inference_ms=round(inference_ms, 3), latency_ms=round(latency_ms, 3),
    )

