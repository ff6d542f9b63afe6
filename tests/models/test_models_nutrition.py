"""nutrition.csv covers every dish label, with plausible values (energy agrees with its macronutrients)."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference_consumer.models import nutrition
from inference_consumer.models.labels import IMAGENET_FOOD_CLASS_IDS
from inference_consumer.models.repository import LOCAL

DISH_LABELS = (LOCAL.template / "meal_analyzer" / "dish_labels.txt").read_text().splitlines()
# Energy from macronutrients with EU Regulation 1169/2011 factors (kcal/g): available carbohydrate 4, fibre 2,
# protein 4, fat 9, alcohol 7. FDC's own energy uses food-specific Atwater factors, hence the tolerance; the
# 10 kcal floor covers low-energy foods (coffee, broth, lemon) where organic acids and rounding dominate.
TOLERANCE = 0.25
FLOOR_KCAL = 10.0


def test_every_dish_label_has_exactly_one_row_with_its_imagenet_id() -> None:
    table = nutrition.table()
    assert list(table) == DISH_LABELS
    assert [row.imagenet_id for row in table.values()] == list(IMAGENET_FOOD_CLASS_IDS)


@pytest.mark.parametrize("label", DISH_LABELS)
def test_energy_agrees_with_macronutrients(label: str) -> None:
    row = nutrition.lookup(label)
    available_carbs = row.carbs_g_per_100g - row.fibre_g_per_100g
    from_macros = (4 * available_carbs + 2 * row.fibre_g_per_100g + 4 * row.protein_g_per_100g
                   + 9 * row.fat_g_per_100g + 7 * row.alcohol_g_per_100g)
    assert abs(from_macros - row.kcal_per_100g) <= max(TOLERANCE * row.kcal_per_100g, FLOOR_KCAL), \
        f"{label}: {row.kcal_per_100g} kcal stated, {from_macros:.1f} from macronutrients"


@pytest.mark.parametrize("label", DISH_LABELS)
def test_values_are_physically_possible(label: str) -> None:
    row = nutrition.lookup(label)
    grams = row.carbs_g_per_100g + row.protein_g_per_100g + row.fat_g_per_100g + row.alcohol_g_per_100g
    assert 0 <= row.fibre_g_per_100g <= row.carbs_g_per_100g
    assert 0 < grams <= 100 and 0 < row.kcal_per_100g <= 900, "per 100 g: at most 100 g of nutrients, 900 kcal"
    assert 10 <= row.portion_g <= 500
    assert row.fdc_id > 0 and row.fdc_description


def test_portion_scales_per_100g_values() -> None:
    pizza = nutrition.lookup("pizza")
    slice_ = pizza.portion()
    assert slice_.weight_g == pizza.portion_g
    assert slice_.kcal == pytest.approx(pizza.kcal_per_100g * pizza.portion_g / 100)
    assert pizza.portion(200).carbs_g == pytest.approx(2 * pizza.carbs_g_per_100g)


def test_lookup_of_an_unknown_label_names_it() -> None:
    with pytest.raises(KeyError, match="'sushi'"):
        nutrition.lookup("sushi")


def test_parse_errors_name_the_line_and_field(tmp_path: Path) -> None:
    text = (Path(nutrition.__file__).with_name("nutrition.csv")).read_text()
    header_line = next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith("label,"))
    broken = text.replace("pizza,963,170738", "pizza,963,not-a-number")
    pizza_line = next(n for n, line in enumerate(broken.splitlines(), 1) if line.startswith("pizza,"))
    assert pizza_line > header_line
    with pytest.raises(ValueError, match=f"line {pizza_line}: fdc_id='not-a-number'"):
        nutrition.parse(broken)
    with pytest.raises(ValueError, match="appears twice"):
        nutrition.parse(text + text.splitlines()[-1] + "\n")
