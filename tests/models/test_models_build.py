"""The whole build: what it reports, and the local stack's hook that builds only when weights are missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from inference_consumer.models import build, repository
from inference_consumer.models.errors import ModelBuildError
from inference_consumer.models.testing import BuiltModels

pytestmark = pytest.mark.slow


def test_build_reports_every_graph_and_repository(built_models: BuiltModels) -> None:
    report = built_models.report
    assert set(report.graphs) == set(repository.GRAPHS)
    assert all(path.stat().st_size > 0 for path in report.graphs.values())
    assert set(report.repositories) == {"local", "prod", "gpu"}
    for name, target in report.repositories.items():
        assert all(e.ready for e in repository.list_models(target, repository.VARIANTS[name])), name


def test_an_unknown_variant_is_named(built_models: BuiltModels, tmp_path: Path) -> None:
    with pytest.raises(ModelBuildError, match=r"unknown repository variant\(s\) \['tpu'\]"):
        build.build(built_models.settings, {"tpu": tmp_path})


def test_ensure_local_weights_builds_only_what_is_missing(built_models: BuiltModels, tmp_path: Path) -> None:
    target = tmp_path / "repository"
    shutil.copytree(repository.LOCAL.template / "meal_analyzer", target / "meal_analyzer",
                    ignore=shutil.ignore_patterns("*.onnx", "__pycache__"))
    settings = built_models.settings.model_copy(update={"model_repository": target})

    first = build.ensure_local_weights(settings)

    assert first is not None and set(first.repositories) == {"local"}
    assert (target / "meal_analyzer" / repository.VERSION / "food_gate.onnx").is_file()
    assert build.ensure_local_weights(settings) is None


def test_ensure_local_weights_leaves_a_repository_without_our_models_alone(built_models: BuiltModels,
                                                                          tmp_path: Path) -> None:
    shutil.copytree(repository.LOCAL.template / "placeholder", tmp_path / "placeholder")
    settings = built_models.settings.model_copy(update={"model_repository": tmp_path})
    assert build.ensure_local_weights(settings) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["placeholder"]
