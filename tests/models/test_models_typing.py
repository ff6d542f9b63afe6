"""Triton's python-backend models type-check like the rest of the code base.

Each is a top-level module named `model`, so a package-wide mypy run would see duplicates and pyproject
excludes them from it; here each is checked on its own, with the project's mypy settings.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parents[2]
MODEL_FILES = sorted(ROOT.glob("inference_consumer/model_repository*/*/[0-9]*/model.py"))


@pytest.mark.slow
@pytest.mark.parametrize("path", MODEL_FILES, ids=[str(p.relative_to(ROOT)) for p in MODEL_FILES])
def test_model_py_passes_mypy(path: Path) -> None:
    stdout, stderr, status = api.run([str(path), "--config-file", str(ROOT / "pyproject.toml"), "--no-incremental"])
    assert status == 0, stdout + stderr


def test_every_variant_has_a_model_py_to_check() -> None:
    assert {p.parent.parent.name for p in MODEL_FILES} >= {"meal_analyzer", "placeholder"}
    assert {p.parents[2].name for p in MODEL_FILES} == {"model_repository", "model_repository_gpu"}
