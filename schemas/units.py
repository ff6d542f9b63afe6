"""Units and their conversions. Inside VitalStream glucose is mg/dL and HbA1c is %.

Glucose: mmol/L = mg/dL / 18.01559 (molar mass of glucose 180.1559 g/mol; 1 mmol/L = 18.01559 mg/dL).
HbA1c: IFCC mmol/mol = 10.929 × (NGSP % − 2.15) (Hoelzel et al. 2004, doi:10.1373/clinchem.2003.024802).
"""

from __future__ import annotations

from enum import StrEnum

MG_DL_PER_MMOL_L = 18.01559
"""mg/dL in one mmol/L of glucose."""

IFCC_SLOPE = 10.929
IFCC_NGSP_OFFSET_PCT = 2.15


class GlucoseUnit(StrEnum):
    MG_DL = "mg/dL"
    MMOL_L = "mmol/L"


class HbA1cUnit(StrEnum):
    PERCENT = "%"
    MMOL_MOL = "mmol/mol"


def mmol_l_to_mg_dl(glucose_mmol_l: float) -> float:
    """Glucose mmol/L → mg/dL."""
    return glucose_mmol_l * MG_DL_PER_MMOL_L


def mg_dl_to_mmol_l(glucose_mg_dl: float) -> float:
    """Glucose mg/dL → mmol/L."""
    return glucose_mg_dl / MG_DL_PER_MMOL_L


def glucose_to_mg_dl(value: float, unit: GlucoseUnit) -> float:
    """A glucose value in `unit` → mg/dL."""
    return value if unit is GlucoseUnit.MG_DL else mmol_l_to_mg_dl(value)


def hba1c_mmol_mol_to_pct(hba1c_mmol_mol: float) -> float:
    """HbA1c IFCC mmol/mol → NGSP/DCCT % (inverse of the IFCC master equation)."""
    return hba1c_mmol_mol / IFCC_SLOPE + IFCC_NGSP_OFFSET_PCT


def hba1c_pct_to_mmol_mol(hba1c_pct: float) -> float:
    """HbA1c NGSP/DCCT % → IFCC mmol/mol: 10.929 × (% − 2.15)."""
    return IFCC_SLOPE * (hba1c_pct - IFCC_NGSP_OFFSET_PCT)


def hba1c_to_pct(value: float, unit: HbA1cUnit) -> float:
    """An HbA1c value in `unit` → %."""
    return value if unit is HbA1cUnit.PERCENT else hba1c_mmol_mol_to_pct(value)
