"""`vitalstream metrics glucose`: one JSON object keyed by subject, equal to R iglu's values for its example data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vitalstream.cli import metrics as metrics_cli

REFERENCE = Path(__file__).resolve().parents[1] / "metrics" / "iglu_reference.json"
#: CLI key -> iglu function in the reference file
IGLU = {"mean": "mean_glu", "sd": "sd_glu", "cv": "cv_glu", "gmi": "gmi", "tir": "in_range_70_180",
        "tbr54": "below_54", "tbr70": "below_70", "tar180": "above_180", "tar250": "above_250", "lbgi": "lbgi",
        "hbgi": "hbgi", "gri": "gri"}


def run(*args: str) -> dict[str, dict[str, Any]]:
    result = CliRunner().invoke(metrics_cli.app, ["glucose", *args])
    assert result.exit_code == 0, result.output
    parsed: dict[str, dict[str, Any]] = json.loads(result.output)
    return parsed


def test_the_whole_file_gives_iglus_numbers(iglu_csv: Path) -> None:
    if not REFERENCE.exists():
        pytest.skip(f"iglu reference values not found at {REFERENCE}")
    reference = json.loads(REFERENCE.read_text())
    report = run(str(iglu_csv), "--id-col", "id", "--time-col", "time", "--value-col", "gl", "--unit", "mg/dL")
    assert sorted(report) == [f"Subject {i}" for i in range(1, 6)]
    for subject, numbers in report.items():
        assert set(numbers) == {"n", *IGLU, "gri_zone"}
        for key, function in IGLU.items():
            assert numbers[key] == pytest.approx(reference[function][subject], rel=1e-6, abs=1e-9), (subject, key)
    assert report["Subject 1"]["n"] == 2915 and report["Subject 2"]["gri_zone"] == "D"


def test_a_window_keeps_the_last_days_and_mmol_files_are_converted(tmp_path: Path) -> None:
    csv = tmp_path / "cgm.csv"
    rows = ["sid,at,mmol"] + [f"a,2024-01-{1 + i // 288:02d}T{(i % 288) // 12:02d}:{(i % 12) * 5:02d}:00Z,{5 + i % 3}"
                              for i in range(288 * 3)]
    csv.write_text("\n".join([*rows, "a,not a time,5", "b,2024-01-01T00:00:00Z,99"]) + "\n")
    result = CliRunner().invoke(metrics_cli.app, ["glucose", str(csv), "--id-col", "sid", "--time-col", "at",
                                                  "--value-col", "mmol", "--unit", "mmol/L", "--window-days", "1"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["a"]["n"] == 288  # the last 24 h of 3 days
    assert report["a"]["mean"] == pytest.approx(6 * 18.01559, rel=1e-3)
    assert report["a"]["sd"] is not None and "b" not in report  # 99 mmol/L is out of range: rejected
    assert "rejected 1 row(s)" in result.stderr and "rejected" in result.stderr
