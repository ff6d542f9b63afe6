"""Energy and macronutrients for each dish label meal_analyzer names (nutrition.csv; USDA FoodData Central values).

A row is per 100 g plus one typical portion; `Nutrition.portion()` scales it. The table covers exactly the
dish labels (a test holds the two lists equal), so a lookup of a label the model returns never misses.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, fields
from functools import cache
from importlib import resources
from typing import Literal

Match = Literal["exact", "proxy"]


@dataclass(frozen=True)
class Nutrition:
    """One dish: FDC source and values per 100 g (carbohydrate by difference, fibre included), portion in g."""

    label: str
    imagenet_id: int
    fdc_id: int
    fdc_id_recall: Literal["sure", "unsure"]
    fdc_description: str
    match: Match
    kcal_per_100g: float
    carbs_g_per_100g: float
    fibre_g_per_100g: float
    protein_g_per_100g: float
    fat_g_per_100g: float
    alcohol_g_per_100g: float
    portion_g: float

    def portion(self, grams: float | None = None) -> PortionNutrition:
        """Totals for `grams` of the dish (default: its typical portion)."""
        weight_g = self.portion_g if grams is None else grams
        factor = weight_g / 100
        return PortionNutrition(self.label, weight_g, self.kcal_per_100g * factor, self.carbs_g_per_100g * factor,
                                self.protein_g_per_100g * factor, self.fat_g_per_100g * factor)


@dataclass(frozen=True)
class PortionNutrition:
    label: str
    weight_g: float
    kcal: float
    carbs_g: float
    protein_g: float
    fat_g: float


_INT_FIELDS = {"imagenet_id", "fdc_id"}
_TEXT_FIELDS = {"label", "fdc_id_recall", "fdc_description", "match"}


def _parse_row(row: dict[str, str], line: int) -> Nutrition:
    values: dict[str, object] = {}
    for f in fields(Nutrition):
        raw = row.get(f.name)
        if raw is None or raw == "":
            raise ValueError(f"nutrition.csv line {line}: {f.name} is empty")
        try:
            values[f.name] = raw if f.name in _TEXT_FIELDS else int(raw) if f.name in _INT_FIELDS else float(raw)
        except ValueError as err:
            raise ValueError(f"nutrition.csv line {line}: {f.name}={raw!r} is not a number") from err
    if values["match"] not in ("exact", "proxy") or values["fdc_id_recall"] not in ("sure", "unsure"):
        raise ValueError(f"nutrition.csv line {line}: match must be exact|proxy and fdc_id_recall sure|unsure")
    return Nutrition(**values)  # type: ignore[arg-type]


def parse(text: str) -> dict[str, Nutrition]:
    """Rows of a nutrition CSV by label; `#` lines are comments. ValueError naming the line and field."""
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if not line.startswith("#")]
    rows = csv.DictReader(io.StringIO("\n".join(line for _, line in numbered)))
    table: dict[str, Nutrition] = {}
    for (line_number, _), row in zip(numbered[1:], rows, strict=True):
        item = _parse_row(row, line_number)
        if item.label in table:
            raise ValueError(f"nutrition.csv: label {item.label!r} appears twice")
        table[item.label] = item
    return table


@cache
def table() -> dict[str, Nutrition]:
    """The packaged table, read once."""
    return parse(resources.files("inference_consumer.models").joinpath("nutrition.csv").read_text())


def lookup(label: str) -> Nutrition:
    """The row for a dish label; KeyError naming the label if the table has none."""
    try:
        return table()[label]
    except KeyError:
        raise KeyError(f"nutrition: no row for dish label {label!r}") from None
