"""JSON Schema for each contract, for device makers and other languages: the events devices send, and the meal
analysis the inference consumer publishes (what a client reads back about a meal photo)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas.events import CONTRACTS, SCHEMA_VERSION
from schemas.meal_analysis import MealAnalyzed

#: Every contract a schema file is written for.
EXPORTED: tuple[type[BaseModel], ...] = (*CONTRACTS, MealAnalyzed)


def schema_file_name(model_name: str) -> str:
    return f"{model_name}.v{SCHEMA_VERSION}.schema.json"


def export_json_schemas(directory: Path) -> list[Path]:
    """Write one JSON Schema file per contract into `directory`; returns the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for model in EXPORTED:
        schema = model.model_json_schema(mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"urn:vitalstream:event:{model.__name__}:v{SCHEMA_VERSION}"
        path = directory / schema_file_name(model.__name__)
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")
        written.append(path)
    return written
