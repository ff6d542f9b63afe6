"""`vitalstream models build` and `models list` (the group's typer app, as the root command mounts it)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inference_consumer.models import fetch, repository
from inference_consumer.models.testing import BuiltModels
from vitalstream.cli.models import app
from vitalstream.config import get_settings

pytestmark = pytest.mark.slow


@pytest.fixture
def env(built_models: BuiltModels, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The test stack's cache (already filled) and an empty local repository; returns that repository."""
    local = tmp_path / "model_repository"
    local.mkdir()
    monkeypatch.setenv("VITALSTREAM_STACK_DIR", str(built_models.settings.stack_dir))
    monkeypatch.setenv("VITALSTREAM_MODEL_REPOSITORY", str(local))
    monkeypatch.setenv("COLUMNS", "250")
    get_settings.cache_clear()
    yield local
    get_settings.cache_clear()


def test_build_writes_the_local_repository_from_the_cache(env: Path) -> None:
    result = CliRunner().invoke(app, ["build", "local"])
    assert result.exit_code == 0, result.output
    for package in fetch.PACKAGES:
        assert f"cached  │ {package.spec}" in result.output
    assert f"local: {env}" in result.output and "prod:" not in result.output
    assert [e.name for e in repository.list_models(env, repository.LOCAL) if e.ready] == ["meal_analyzer"]


def test_build_into_a_given_folder(env: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["build", "prod", "--prod", str(tmp_path / "prod")])
    assert result.exit_code == 0, result.output
    entries = repository.list_models(tmp_path / "prod", repository.PROD)
    assert sorted(e.name for e in entries if e.ready) == sorted(repository.PROD.weights)


def test_list_shows_what_is_missing_and_how_to_fix_it(env: Path) -> None:
    shutil.copytree(repository.LOCAL.template / "meal_analyzer", env / "meal_analyzer",
                    ignore=shutil.ignore_patterns("*.onnx", "__pycache__"))
    result = CliRunner().invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    assert f"local: {env}" in result.output
    assert "missing 1/meal_preprocess.onnx" in result.output
    assert "Run `vitalstream models build`" in result.output
