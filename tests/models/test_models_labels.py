"""ImageNet labels from TF.js' imagenet_classes.js, and the food classes dishes are named by."""

from __future__ import annotations

import pytest

from inference_consumer.models import fetch, labels
from inference_consumer.models.testing import BuiltModels

SNIPPET = """/** @license Apache-2.0 */
export const IMAGENET_CLASSES: {[classId: number]: string} = {
  0: 'tench, Tinca tinca',
  1: "it's double-quoted",
  2: 'yellow lady\\'s slipper, ' +
      'Cypripedium calceolus',
"""


def _full(snippet: str) -> str:
    rest = "".join(f"  {i}: 'class {i}',\n" for i in range(3, labels.IMAGENET_CLASSES))
    return snippet + rest + "};\n"


def test_parse_handles_escapes_double_quotes_and_continued_lines() -> None:
    parsed = labels.parse_imagenet_classes_js(_full(SNIPPET))
    assert parsed[:3] == ["tench, Tinca tinca", "it's double-quoted", "yellow lady's slipper, Cypripedium calceolus"]
    assert parsed[999] == "class 999"


def test_parse_names_missing_labels() -> None:
    with pytest.raises(ValueError, match=r"missing e\.g\. \[500\]"):
        labels.parse_imagenet_classes_js(_full(SNIPPET).replace("  500: 'class 500',\n", ""))


def test_food_classes_are_923_to_969_without_hay_plus_corn_and_ear() -> None:
    ids = labels.IMAGENET_FOOD_CLASS_IDS
    assert len(ids) == len(set(ids)) == 48
    assert 958 not in ids and {923, 969, 987, 998} <= set(ids)


def test_real_labels_give_the_documented_dish_names(built_models: BuiltModels) -> None:
    imagenet = labels.parse_imagenet_classes_js(
        (fetch.cache_dir(built_models.settings) / fetch.IMAGENET_CLASSES_JS).read_text())
    assert imagenet[958] == "hay"
    dishes = labels.dish_labels(imagenet)
    assert dishes[0] == "plate" and "espresso" in dishes and "pizza" in dishes
    assert len(set(dishes)) == len(dishes), "dish labels must be unique: they key the nutrition table"
