"""MealAnalyzed: what the inference consumer says about a meal photo (is it food, which dishes, a typical portion).

The envelope is the events' own (user, device and source are the meal's; occurred_at is the meal's time;
received_at is when the analysis was made). The id is deterministic: uuid5 of the meal's event id, the photo's
sha256 and the models that looked at it, so analysing the same photo again with the same models publishes the
same id (after a crash, a rebalance or a replay) and a consumer drops the repeat.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.events import Event, Number

#: Namespace of analysis ids: uuid5(namespace, "<meal event id>|<photo sha256>|<model>:<version>,…").
MEAL_ANALYSIS_NAMESPACE = UUID("3b7f1c52-9a04-4d6e-8e21-6c0f5d9a7b13")
MAX_TOP_FOODS = 10

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Scene = Literal["food", "report", "other"]


class FoodGuess(BaseModel):
    """A dish the classifier names, and its share of the classifier's food probability (0–1)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str = Field(min_length=1, max_length=100)
    confidence: Probability


class ModelVersion(BaseModel):
    """A Triton model and the version that answered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    version: str = Field(min_length=1, max_length=50)


def analysis_id(meal_event_id: UUID, photo_sha256: str, models: Iterable[ModelVersion]) -> UUID:
    """The id of the analysis of one photo of one meal by these models; the same inputs give the same id."""
    names = ",".join(f"{m.name}:{m.version}" for m in sorted(models, key=lambda m: (m.name, m.version)))
    return uuid5(MEAL_ANALYSIS_NAMESPACE, f"{meal_event_id}|{photo_sha256}|{names}")


_ESTIMATE_FIELDS = ("estimate_label", "portion_g", "energy_kcal", "carbs_g", "protein_g", "fat_g")


class MealAnalyzed(Event):
    """A meal photo, analysed. Nutrition is for one typical portion of the most likely dish; None when not food.

    Estimates are for meal logging, not for dosing insulin.
    """

    type: Literal["meal_analysis"] = "meal_analysis"
    meal_event_id: UUID = Field(description="The MealLogged event whose photo this is.")
    photo_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    is_food: bool = Field(description="food_score ≥ the consumer's threshold (0.5).")
    food_score: Probability = Field(description="The larger of gate_food_prob and imagenet_food_score.")
    gate_food_prob: Probability = Field(description="The food/report/other gate's P(food).")
    imagenet_food_score: Probability = Field(description="The ImageNet classifier's probability on food classes.")
    scene: Scene = Field(description="The gate's most likely class.")
    top_foods: list[FoodGuess] = Field(default_factory=list, max_length=MAX_TOP_FOODS,
                                       description="Most likely dishes first; empty when not food.")
    estimate_label: str | None = Field(default=None, description="The dish the nutrition estimate is for.")
    portion_g: Number | None = Field(default=None, gt=0, le=5_000)
    energy_kcal: Number | None = Field(default=None, ge=0, le=10_000)
    carbs_g: Number | None = Field(default=None, ge=0, le=1_500)
    protein_g: Number | None = Field(default=None, ge=0, le=1_500)
    fat_g: Number | None = Field(default=None, ge=0, le=1_500)
    models: list[ModelVersion] = Field(min_length=1, description="The models (and versions) that answered.")
    inference_ms: Number = Field(ge=0, description="Triton round trip of the batch this photo went in.")
    latency_ms: Number = Field(ge=0, description="From the consumer taking the meal event to this analysis.")

    @model_validator(mode="before")
    @classmethod
    def _deterministic_id(cls, data: Any) -> Any:
        # Filled in when not given, so callers cannot forget it; checked below when given.
        if isinstance(data, dict) and data.get("event_id") is None and {"meal_event_id", "photo_sha256",
                                                                        "models"} <= data.keys():
            try:
                models = [m if isinstance(m, ModelVersion) else ModelVersion.model_validate(m)
                          for m in data["models"]]
                data = {**data, "event_id": analysis_id(UUID(str(data["meal_event_id"])), data["photo_sha256"],
                                                        models)}
            except (ValueError, TypeError):
                pass  # the fields' own validation reports what is wrong with them
        return data

    @model_validator(mode="after")
    def _consistent(self) -> MealAnalyzed:
        expected = analysis_id(self.meal_event_id, self.photo_sha256, self.models)
        if self.event_id != expected:
            raise ValueError(f"event_id must be uuid5 of meal_event_id, photo_sha256 and models ({expected}), "
                             f"got {self.event_id}")
        estimate = [getattr(self, name) for name in _ESTIMATE_FIELDS]
        if not self.is_food and any(v is not None for v in estimate):
            raise ValueError("estimate_label, portion_g and nutrition must be empty when is_food is false")
        if not self.is_food and self.top_foods:
            raise ValueError("top_foods must be empty when is_food is false")
        if any(v is None for v in estimate) and any(v is not None for v in estimate):
            raise ValueError(f"{', '.join(_ESTIMATE_FIELDS)} must be given together or not at all")
        return self
