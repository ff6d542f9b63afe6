"""Which Debian packages are missing, asked of the real dpkg database."""

from __future__ import annotations

import shutil

import pytest

from stack.apt import missing_packages

pytestmark = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs a Debian system")


def test_installed_packages_are_not_missing() -> None:
    assert missing_packages(["dpkg", "coreutils"]) == []


def test_unknown_packages_are_missing_in_the_order_given() -> None:
    assert missing_packages(["vitalstream-nope-b", "dpkg", "vitalstream-nope-a"]) == [
        "vitalstream-nope-b", "vitalstream-nope-a"]


def test_nothing_asked_nothing_missing() -> None:
    assert missing_packages([]) == []
