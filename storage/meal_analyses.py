"""Meal-photo analyses (table meal_analyses, migration 0007), as the stream worker received them.

A row per analysis, keyed by its event id. The id is deterministic (schemas.meal_analysis.analysis_id: the meal,
the photo's sha256 and the model versions), so a re-delivered or re-run analysis is a no-op here, while a
re-analysis by other model versions is a second row. Daily totals read the newest analysis of a meal
(storage.derived) to fill in nutrients the user did not enter.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Boolean, Column, Connection, Float, Index, String, Table, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB, insert

from schemas.meal_analysis import MealAnalyzed
from storage.tables import TS, metadata

meal_analyses = Table(
    "meal_analyses", metadata,
    Column("event_id", Uuid, primary_key=True),
    Column("user_id", Text, nullable=False),
    Column("meal_event_id", Uuid, nullable=False),
    Column("occurred_at", TS, nullable=False),  # the meal's time
    Column("photo_sha256", String(64), nullable=False),
    Column("is_food", Boolean, nullable=False),
    Column("food_score", Float, nullable=False),
    Column("scene", String(16), nullable=False),
    Column("top_foods", JSONB, nullable=False),
    Column("estimate_label", Text),
    Column("portion_g", Float),
    Column("energy_kcal", Float),
    Column("carbs_g", Float),
    Column("protein_g", Float),
    Column("fat_g", Float),
    Column("models", JSONB, nullable=False),
    Column("received_at", TS, nullable=False),  # when the analysis was made: "newest" orders by it
)
# Daily totals look up the analyses of each meal.
Index("ix_meal_analyses_user_id_meal_event_id", meal_analyses.c.user_id, meal_analyses.c.meal_event_id)


def analysis_row(analysis: MealAnalyzed) -> dict[str, Any]:
    """The meal_analyses row of an analysis event."""
    return {
        "event_id": analysis.event_id,
        "user_id": analysis.user_id,
        "meal_event_id": analysis.meal_event_id,
        "occurred_at": analysis.occurred_at,
        "photo_sha256": analysis.photo_sha256,
        "is_food": analysis.is_food,
        "food_score": analysis.food_score,
        "scene": analysis.scene,
        "top_foods": [guess.model_dump(mode="json") for guess in analysis.top_foods],
        "estimate_label": analysis.estimate_label,
        "portion_g": analysis.portion_g,
        "energy_kcal": analysis.energy_kcal,
        "carbs_g": analysis.carbs_g,
        "protein_g": analysis.protein_g,
        "fat_g": analysis.fat_g,
        "models": [model.model_dump(mode="json") for model in analysis.models],
        "received_at": analysis.received_at,
    }


def insert_meal_analyses(connection: Connection, analyses: Sequence[MealAnalyzed]) -> int:
    """Insert analyses in one round trip; one whose id is stored already is skipped. Returns how many were new."""
    if not analyses:
        return 0
    statement = insert(meal_analyses).values([analysis_row(a) for a in analyses])
    inserted = connection.execute(
        statement.on_conflict_do_nothing(index_elements=["event_id"]).returning(meal_analyses.c.event_id)).all()
    return len(inserted)
