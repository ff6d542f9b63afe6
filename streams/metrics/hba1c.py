"""HbA1c diagnostic category (ADA) and conversion between NGSP % and IFCC mmol/mol.

Categories split at 5.7 and 6.5 %: normal < 5.7 <= prediabetes < 6.5 <= diabetes range. The ADA prints
"5.7-6.4 %"; a fractional value between the printed ranges belongs to the lower one (6.45 % is
prediabetes). We do not round first: a lab's one-decimal result classifies as printed.
The category is a screening label for a display, not a diagnosis (ADA asks for a confirming test).
Source: ADA Standards of Care 2025, section 2 (diagnosis criteria), doi 10.2337/dc25-S002.
"""

from __future__ import annotations

from enum import StrEnum

from streams.metrics.inputs import require_positive

PREDIABETES_MIN_PCT = 5.7
DIABETES_MIN_PCT = 6.5

# Master equation NGSP % = 0.915 x IFCC % + 2.15, with 1 IFCC % = 10 mmol/mol: 10 / 0.915 = 10.929.
IFCC_MMOL_MOL_PER_NGSP_PCT = 10.929
NGSP_OFFSET_PCT = 2.15


class Hba1cCategory(StrEnum):
    """ADA HbA1c category."""

    NORMAL = "normal"
    PREDIABETES = "prediabetes"
    DIABETES = "diabetes_range"


def classify_hba1c(
    hba1c_pct: float,
    *,
    prediabetes_min_pct: float = PREDIABETES_MIN_PCT,
    diabetes_min_pct: float = DIABETES_MIN_PCT,
) -> Hba1cCategory:
    """Category of an HbA1c in NGSP %: < 5.7 normal; 5.7 <= x < 6.5 prediabetes; >= 6.5 diabetes range.

    Raises ValueError naming hba1c_pct when it is not a finite number > 0.
    Source: ADA Standards of Care 2025, section 2, doi 10.2337/dc25-S002.
    """
    value = require_positive(hba1c_pct, "hba1c_pct")
    if value >= diabetes_min_pct:
        return Hba1cCategory.DIABETES
    if value >= prediabetes_min_pct:
        return Hba1cCategory.PREDIABETES
    return Hba1cCategory.NORMAL


def hba1c_pct_to_mmol_mol(hba1c_pct: float) -> float:
    """NGSP % to IFCC mmol/mol: 10.929 x (% - 2.15). Example: 6.5 % -> 47.5 mmol/mol.

    Raises ValueError naming hba1c_pct unless it is finite and > 2.15 % (the IFCC value would be <= 0).
    Source: Hoelzel et al. 2004, Clin Chem 50:166 (IFCC-NGSP master equation), doi 10.1373/clinchem.2003.024802.
    """
    value = require_positive(hba1c_pct, "hba1c_pct")
    if value <= NGSP_OFFSET_PCT:
        raise ValueError(f"hba1c_pct: must be > {NGSP_OFFSET_PCT} % to convert to mmol/mol, got {hba1c_pct!r}")
    return IFCC_MMOL_MOL_PER_NGSP_PCT * (value - NGSP_OFFSET_PCT)


def hba1c_mmol_mol_to_pct(hba1c_mmol_mol: float) -> float:
    """IFCC mmol/mol to NGSP %: mmol/mol / 10.929 + 2.15 (inverse of :func:`hba1c_pct_to_mmol_mol`).

    Raises ValueError naming hba1c_mmol_mol when it is not a finite number > 0.
    Source: Hoelzel et al. 2004, Clin Chem 50:166, doi 10.1373/clinchem.2003.024802.
    """
    value = require_positive(hba1c_mmol_mol, "hba1c_mmol_mol")
    return value / IFCC_MMOL_MOL_PER_NGSP_PCT + NGSP_OFFSET_PCT
