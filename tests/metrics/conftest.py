"""Fixtures for the metric tests: iglu's example CGM data (GPL, read in place, never copied) and its reference."""

from __future__ import annotations

import csv
import json
import os
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

REFERENCE_FILE = Path(__file__).with_name("iglu_reference.json")
# The data sits beside the checkout (../shared/data); VITALSTREAM_IGLU_EXAMPLE_CSV points elsewhere.
DEFAULT_EXAMPLE_CSV = Path(__file__).resolve().parents[3] / "shared/data/cgm/iglu_example_data_5_subject.csv"

Subjects = dict[str, tuple[list[float], list[float]]]


@pytest.fixture(scope="session")
def iglu_reference() -> dict[str, Any]:
    reference: dict[str, Any] = json.loads(REFERENCE_FILE.read_text())
    return reference


@pytest.fixture(scope="session")
def iglu_example() -> Subjects:
    """Subject id -> (epoch seconds, glucose mg/dL), in file order. Skips when the CSV is absent."""
    path = Path(os.environ.get("VITALSTREAM_IGLU_EXAMPLE_CSV", DEFAULT_EXAMPLE_CSV))
    if not path.exists():
        pytest.skip(f"iglu example data not found at {path}")
    subjects: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            # The R reference ran in Asia/Jerusalem; no DST change falls inside the data, so UTC gives
            # the same time differences.
            stamp = datetime.strptime(row["time"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            seconds, glucose = subjects[row["id"]]
            seconds.append(stamp.timestamp())
            glucose.append(float(row["gl"]) if row["gl"] not in ("", "NA") else float("nan"))
    return dict(subjects)
