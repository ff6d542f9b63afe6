"""Fixtures for the meal-photo model tests: the real weights and photos (fetched once into the stack cache) and
the three model repositories built from them into a temporary folder."""

from __future__ import annotations

import pytest

from inference_consumer.models.testing import BuiltModels
from vitalstream.config import Settings


@pytest.fixture(scope="session")
def built_models(tmp_path_factory: pytest.TempPathFactory) -> BuiltModels:
    """Every variant built into a temporary folder; downloads happen once, into the stack cache."""
    return BuiltModels.build(Settings(), tmp_path_factory.mktemp("model_repositories"))
