"""TimescaleDB (Apache-2 edition) for the system's PostgreSQL: built once from Debian's source package, cached.

Debian bookworm ships PostgreSQL 15 but no TimescaleDB; trixie has it as a *source* package, fetched through
a private apt state (its own sources.list, lists and archives) so the machine's apt configuration is untouched.
Debian strips the TSL-licensed `tsl/` tree, hence APACHE_ONLY: no compression, continuous aggregates or jobs.

The build is installed with DESTDIR into `<cache>/timescaledb-<version>-pg<major>/root`; every start copies
the extension's files from there into PostgreSQL's own folders when they are missing (a fresh machine, or
a system PostgreSQL reinstalled), so only the very first run builds.
"""

from __future__ import annotations

import filecmp
import json
import logging
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from stack.apt import apt_install
from stack.base import StackError
from stack.steps import percent_progress, run_step

logger = logging.getLogger(__name__)

PG_MAJOR = 15
SERVER_PACKAGES = (f"postgresql-{PG_MAJOR}",)
BUILD_PACKAGES = (f"postgresql-server-dev-{PG_MAJOR}", "build-essential", "cmake", "dpkg-dev")
SOURCE_PACKAGE = "timescaledb"
SOURCE_SUITE = "trixie"
CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DAPACHE_ONLY=ON",
    "-DSEND_TELEMETRY_DEFAULT=OFF",
    "-DUSE_TELEMETRY=OFF",
    "-DREGRESS_CHECKS=OFF",
    "-DTAP_CHECKS=OFF",
    "-DWARNINGS_AS_ERRORS=OFF",
)
_APT_SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))
_MANIFEST = "build.json"


@dataclass(frozen=True)
class PgLayout:
    """Where one PostgreSQL installation keeps its programs, loadable modules and extension scripts."""

    bindir: Path
    pkglibdir: Path
    sharedir: Path

    @property
    def extension_dir(self) -> Path:
        return self.sharedir / "extension"

    @classmethod
    def detect(cls, major: int = PG_MAJOR) -> PgLayout:
        pg_config = Path(f"/usr/lib/postgresql/{major}/bin/pg_config")
        if not pg_config.exists():
            raise StackError(f"PostgreSQL {major} is not installed ({pg_config} missing): "
                             f"apt-get install postgresql-{major}")
        out = subprocess.run([str(pg_config), "--bindir", "--pkglibdir", "--sharedir"],
                             capture_output=True, text=True, check=True).stdout.split()
        return cls(Path(out[0]), Path(out[1]), Path(out[2]))

    def has_timescaledb(self) -> bool:
        """True if the extension's control file and the library version it names are installed."""
        version = control_version(self.extension_dir / "timescaledb.control")
        return version is not None and (self.pkglibdir / f"timescaledb-{version}.so").exists()


def control_version(control: Path) -> str | None:
    """`default_version` of an extension control file, or None if there is none."""
    try:
        match = re.search(r"^default_version\s*=\s*'([^']+)'", control.read_text(), re.M)
    except OSError:
        return None
    return match.group(1) if match else None


@dataclass(frozen=True)
class CachedBuild:
    """One finished build: DESTDIR tree under `root`, described by build.json."""

    path: Path

    @property
    def root(self) -> Path:
        return self.path / "root"

    @property
    def version(self) -> str:
        return str(json.loads((self.path / _MANIFEST).read_text())["version"])

    def files(self, layout: PgLayout) -> Iterator[tuple[Path, Path]]:
        """(cached file, where PostgreSQL wants it) for every file of the extension."""
        for target_dir, pattern in ((layout.pkglibdir, "timescaledb*.so"),
                                    (layout.extension_dir, "timescaledb*.control"),
                                    (layout.extension_dir, "timescaledb*.sql")):
            for cached in sorted((self.root / target_dir.relative_to("/")).glob(pattern)):
                yield cached, target_dir / cached.name

    def install_into(self, layout: PgLayout) -> int:
        """Copy missing or differing files into PostgreSQL's folders; returns how many were copied."""
        stale = [(src, dst) for src, dst in self.files(layout)
                 if not dst.exists() or not filecmp.cmp(src, dst, shallow=False)]
        if not stale:
            return 0
        unwritable = sorted({str(dst.parent) for _, dst in stale if not os.access(dst.parent, os.W_OK)})
        if unwritable:
            raise StackError(f"TimescaleDB {self.version} is built ({self.path}) but not installed into "
                             f"{', '.join(unwritable)}, which this user cannot write: run `vitalstream stack up` "
                             "once as root")
        for src, dst in stale:
            # Copy beside, then rename: a running server never maps a half-written library.
            tmp = dst.with_name(f".{dst.name}.vitalstream-tmp")
            shutil.copy2(src, tmp)
            os.replace(tmp, dst)
        logger.info("timescaledb: installed %d files into PostgreSQL's folders", len(stale),
                    extra={"version": self.version})
        return len(stale)


def find_cached(cache_dirs: Sequence[Path], major: int = PG_MAJOR) -> CachedBuild | None:
    """The newest finished build in the first cache folder that has one."""
    for cache_dir in cache_dirs:
        builds = sorted(cache_dir.glob(f"timescaledb-*-pg{major}/{_MANIFEST}"), key=lambda p: p.stat().st_mtime)
        if builds:
            return CachedBuild(builds[-1].parent)
    return None


def debian_mirror(source_files: Sequence[Path] = _APT_SOURCES) -> str:
    """The Debian mirror this machine's apt already uses (deb822 or one-line format); not the security one."""
    for sources in source_files:
        if not sources.exists():
            continue
        text = sources.read_text()
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            if uris and not uris.group(1).rstrip("/").endswith("-security"):
                return uris.group(1)
        for line in text.splitlines():
            # deb [options] URI suite components
            match = re.match(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", line)
            if match and not match.group(1).rstrip("/").endswith("-security"):
                return match.group(1)
    raise StackError(f"no Debian mirror found in {' or '.join(map(str, source_files))}: "
                     "needed to fetch TimescaleDB's source package")


def build(cache_dir: Path, layout: PgLayout, log: Path) -> CachedBuild:
    """Fetch trixie's timescaledb source package, build it against `layout`, install it into the cache."""
    timings: dict[str, float] = {"apt_install_s": apt_install((*SERVER_PACKAGES, *BUILD_PACKAGES), log=log)}
    work = cache_dir / f"build-{os.getpid()}"  # per process: two first runs may race
    shutil.rmtree(work, ignore_errors=True)
    src, apt_state = work / "src", work / "apt"
    for d in (src, apt_state / "lists" / "partial", apt_state / "archives" / "partial"):
        d.mkdir(parents=True)
    (apt_state / "sources.list").write_text(f"deb-src {debian_mirror()} {SOURCE_SUITE} main\n")
    apt_options = [
        "-o", f"Dir::Etc::sourcelist={apt_state / 'sources.list'}", "-o", "Dir::Etc::sourceparts=-",
        "-o", f"Dir::State::lists={apt_state / 'lists'}", "-o", f"Dir::Cache::archives={apt_state / 'archives'}",
        # apt drops to the _apt user to download, which cannot write into our folders.
        "-o", "APT::Sandbox::User=root", "-q",
    ]
    timings["source_index_s"] = run_step(["apt-get", *apt_options, "update"],
                                         f"apt-get update ({SOURCE_SUITE} sources)", log=log)
    timings["source_download_s"] = run_step(
        ["apt-get", *apt_options, "source", "--download-only", SOURCE_PACKAGE],
        f"download {SOURCE_PACKAGE} source ({SOURCE_SUITE})", log=log, cwd=src)
    dsc = _single(src.glob(f"{SOURCE_PACKAGE}_*.dsc"), f"{SOURCE_PACKAGE}_*.dsc in {src}")
    run_step(["dpkg-source", "-x", dsc.name, "tree"], f"unpack {dsc.name}", log=log, cwd=src)
    tree = src / "tree"

    pg_config = layout.bindir / "pg_config"
    timings["cmake_configure_s"] = run_step(
        ["cmake", "-S", str(tree), "-B", str(tree / "build"), f"-DPG_CONFIG={pg_config}", *CMAKE_OPTIONS],
        "cmake configure timescaledb", log=log)
    timings["cmake_build_s"] = run_step(
        ["cmake", "--build", str(tree / "build"), f"-j{os.cpu_count() or 1}"], "cmake build timescaledb",
        log=log, progress=percent_progress(10))
    staged = work / "staged"
    timings["cmake_install_s"] = run_step(["cmake", "--install", str(tree / "build")], "cmake install timescaledb",
                                          log=log, env={**os.environ, "DESTDIR": str(staged / "root")})

    version = control_version(staged / "root" / layout.extension_dir.relative_to("/") / "timescaledb.control")
    if version is None:
        raise StackError(f"the timescaledb build installed no timescaledb.control under {staged}; see {log}")
    manifest = {"version": version, "source": dsc.name.removesuffix(".dsc"), "pg_major": PG_MAJOR,
                "cmake_options": list(CMAKE_OPTIONS), "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "timings_s": {k: round(v, 2) for k, v in timings.items()}}
    (staged / _MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    final = cache_dir / f"timescaledb-{version}-pg{PG_MAJOR}"
    if not (final / _MANIFEST).exists():
        shutil.rmtree(final, ignore_errors=True)
        staged.rename(final)  # build.json appears only with a complete tree: a killed build leaves no cache entry
    shutil.rmtree(work, ignore_errors=True)
    logger.info("timescaledb %s built into %s", version, final, extra=manifest)
    return CachedBuild(final)


def _single(paths: Iterator[Path], what: str) -> Path:
    found = list(paths)
    if len(found) != 1:
        raise StackError(f"expected exactly one {what}, found {len(found)}")
    return found[0]
