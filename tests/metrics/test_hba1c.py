"""HbA1c categories at their boundaries and the NGSP <-> IFCC conversion."""

from __future__ import annotations

import pytest

from streams.metrics.hba1c import (
    Hba1cCategory,
    classify_hba1c,
    hba1c_mmol_mol_to_pct,
    hba1c_pct_to_mmol_mol,
)


@pytest.mark.parametrize(
    ("hba1c_pct", "category"),
    [
        (5.0, Hba1cCategory.NORMAL),
        (5.69, Hba1cCategory.NORMAL),
        (5.7, Hba1cCategory.PREDIABETES),
        (6.4, Hba1cCategory.PREDIABETES),
        (6.45, Hba1cCategory.PREDIABETES),  # between the printed ranges: the lower one
        (6.49, Hba1cCategory.PREDIABETES),
        (6.5, Hba1cCategory.DIABETES),
        (9.0, Hba1cCategory.DIABETES),
    ],
)
def test_categories_split_at_5_7_and_6_5(hba1c_pct: float, category: Hba1cCategory) -> None:
    assert classify_hba1c(hba1c_pct) is category


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), None])
def test_invalid_values_name_the_field(bad: object) -> None:
    with pytest.raises(ValueError, match="hba1c_pct"):
        classify_hba1c(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("pct", "mmol_mol"),
    # Published equivalents (IFCC/NGSP tables): 5.7 % = 39, 6.5 % = 48, 7 % = 53, 9 % = 75 mmol/mol.
    [(5.7, 39), (6.5, 48), (7.0, 53), (9.0, 75)],
)
def test_conversion_matches_published_equivalents(pct: float, mmol_mol: int) -> None:
    assert round(hba1c_pct_to_mmol_mol(pct)) == mmol_mol
    assert hba1c_pct_to_mmol_mol(pct) == pytest.approx(10.929 * (pct - 2.15))


def test_conversion_round_trips() -> None:
    for pct in (4.0, 5.7, 6.5, 10.2, 14.0):
        assert hba1c_mmol_mol_to_pct(hba1c_pct_to_mmol_mol(pct)) == pytest.approx(pct)
    assert hba1c_mmol_mol_to_pct(48) == pytest.approx(48 / 10.929 + 2.15)


def test_conversion_rejects_values_without_a_positive_counterpart() -> None:
    with pytest.raises(ValueError, match="hba1c_pct"):
        hba1c_pct_to_mmol_mol(2.15)
    with pytest.raises(ValueError, match="hba1c_mmol_mol"):
        hba1c_mmol_mol_to_pct(0)
