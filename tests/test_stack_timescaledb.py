"""TimescaleDB build cache and the apt-source lookup: real files in a temporary folder, no server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stack.base import StackError
from stack.timescaledb import CachedBuild, PgLayout, control_version, debian_mirror, find_cached

DEB822 = """\
Types: deb
# http://snapshot.example/archive/debian-security/20250520T000000Z
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
"""


def test_mirror_from_deb822_sources_skips_the_security_archive(tmp_path: Path) -> None:
    (tmp_path / "debian.sources").write_text(DEB822)
    assert debian_mirror([tmp_path / "debian.sources"]) == "http://mirror.example/debian"


def test_mirror_from_one_line_sources_with_options(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb http://mirror.example/debian-security bookworm-security main\n"
        "deb [signed-by=/usr/share/keyrings/k.gpg] http://mirror.example/debian bookworm main\n")
    missing = tmp_path / "debian.sources"
    assert debian_mirror([missing, tmp_path / "sources.list"]) == "http://mirror.example/debian"


def test_no_mirror_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("# nothing here\n")
    with pytest.raises(StackError, match="no Debian mirror"):
        debian_mirror([tmp_path / "sources.list"])


def test_control_version(tmp_path: Path) -> None:
    control = tmp_path / "timescaledb.control"
    control.write_text("comment = 'Enables scalable inserts'\ndefault_version = '2.19.3'\nrelocatable = false\n")
    assert control_version(control) == "2.19.3"
    assert control_version(tmp_path / "absent.control") is None


def _fake_build(cache: Path, layout: PgLayout, version: str) -> CachedBuild:
    build = CachedBuild(cache / f"timescaledb-{version}-pg15")
    lib = build.root / layout.pkglibdir.relative_to("/")
    ext = build.root / layout.extension_dir.relative_to("/")
    lib.mkdir(parents=True)
    ext.mkdir(parents=True)
    (lib / "timescaledb.so").write_bytes(b"loader")
    (lib / f"timescaledb-{version}.so").write_bytes(b"library " + version.encode())
    (ext / "timescaledb.control").write_text(f"default_version = '{version}'\n")
    (ext / f"timescaledb--{version}.sql").write_text("-- install script\n")
    (build.path / "build.json").write_text(json.dumps({"version": version}))
    return build


def test_cached_build_is_copied_into_postgres_folders_once(tmp_path: Path) -> None:
    layout = PgLayout(tmp_path / "pg" / "bin", tmp_path / "pg" / "lib", tmp_path / "pg" / "share")
    layout.pkglibdir.mkdir(parents=True)
    layout.extension_dir.mkdir(parents=True)
    build = _fake_build(tmp_path / "cache", layout, "2.19.3")
    assert not layout.has_timescaledb()

    assert build.install_into(layout) == 4
    assert layout.has_timescaledb()
    assert build.install_into(layout) == 0

    (layout.pkglibdir / "timescaledb-2.19.3.so").write_bytes(b"something else")
    assert build.install_into(layout) == 1
    assert (layout.pkglibdir / "timescaledb-2.19.3.so").read_bytes() == b"library 2.19.3"


def test_find_cached_prefers_the_first_folder_and_ignores_unfinished_builds(tmp_path: Path) -> None:
    layout = PgLayout(Path("/pg/bin"), Path("/pg/lib"), Path("/pg/share"))
    own, shared = tmp_path / "own", tmp_path / "shared"
    (own / "timescaledb-2.19.3-pg15" / "root").mkdir(parents=True)  # no build.json: a build that was killed
    _fake_build(shared, layout, "2.19.3")
    found = find_cached([own, shared])
    assert found is not None and found.path.parent == shared and found.version == "2.19.3"
    assert find_cached([tmp_path / "none"]) is None
