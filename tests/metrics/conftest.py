"""Fixtures for the metric tests: iglu's example CGM data (GPL, fetched by hash into the stack cache, never
committed: tests/iglu_data.py) and its reference values."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.iglu_data import iglu_example_csv

REFERENCE_FILE = Path(__file__).with_name("iglu_reference.json")

Subjects = dict[str, tuple[list[float], list[float]]]


@pytest.fixture(scope="session")
def iglu_reference() -> dict[str, Any]:
    reference: dict[str, Any] = json.loads(REFERENCE_FILE.read_text())
    return reference


@pytest.fixture(scope="session")
def iglu_example() -> Subjects:
    """Subject id -> (epoch seconds, glucose mg/dL), in file order."""
    path = iglu_example_csv()
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
