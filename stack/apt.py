"""Debian packages for the local stack: install the missing ones through apt, without starting their daemons.

The stack starts every server itself (its own port, data and PID), so a package's postinst must not start
the system's copy: /usr/sbin/policy-rc.d answers 101 ("action forbidden") while apt runs.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from stack.base import StackError
from stack.steps import Progress, run_step

logger = logging.getLogger(__name__)

_POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
_FORBID_DAEMON_START = "#!/bin/sh\n# vitalstream: no daemon starts while apt runs.\nexit 101\n"
# Serialises our apt runs across processes (policy-rc.d is shared); apt's own lock only covers one apt run.
_LOCK_DIRS = (Path("/run/lock"), Path("/tmp"))
_DPKG_LOCK_WAIT_S = 300
_APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "a"}

_lists_updated = False  # `apt-get update` runs at most once per process


def missing_packages(packages: Sequence[str]) -> list[str]:
    """The packages among `packages` that dpkg does not list as installed."""
    if not packages:
        return []
    result = subprocess.run(["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\n", *packages],
                            capture_output=True, text=True, check=False)
    installed = {line.split()[0] for line in result.stdout.splitlines() if line.endswith(" installed")}
    return [p for p in packages if p.split(":")[0] not in installed]


def apt_install(packages: Sequence[str], log: Path | None = None) -> float:
    """Install those of `packages` not yet installed; returns seconds spent (0.0 when all were there).

    Needs root when something is missing. `apt-get update` runs first only if apt has no candidate for a
    missing package, or once after a failed install (stale lists point at files the mirror no longer has).
    """
    missing = missing_packages(packages)
    if not missing:
        return 0.0
    if os.geteuid() != 0:
        raise StackError(f"Debian packages missing: {' '.join(missing)}. Installing them needs root: run this as "
                         f"root, or first run: sudo apt-get install --no-install-recommends {' '.join(missing)}")
    with _apt_lock(), _daemons_not_started():
        missing = missing_packages(missing)  # another process may have installed them while we waited
        if not missing:
            return 0.0
        elapsed = 0.0
        if _without_candidate(missing):
            elapsed += _update(log)
        try:
            elapsed += _install(missing, log)
        except StackError:
            if _lists_updated:
                raise
            logger.warning("apt-get install failed; updating the package lists and trying once more")
            elapsed += _update(log)
            elapsed += _install(missing, log)
        return elapsed


def _install(packages: Sequence[str], log: Path | None) -> float:
    cmd = ["apt-get", "install", "-y", "-q", "--no-install-recommends",
           "-o", f"DPkg::Lock::Timeout={_DPKG_LOCK_WAIT_S}", *packages]
    return run_step(cmd, f"apt-get install {' '.join(packages)}", log=log, env=_apt_env(),
                    progress=_setup_progress())


def _update(log: Path | None) -> float:
    global _lists_updated
    elapsed = run_step(["apt-get", "update", "-q", "-o", f"DPkg::Lock::Timeout={_DPKG_LOCK_WAIT_S}"],
                       "apt-get update", log=log, env=_apt_env())
    _lists_updated = True
    return elapsed


def _without_candidate(packages: Sequence[str]) -> list[str]:
    policy = subprocess.run(["apt-cache", "policy", *packages], capture_output=True, text=True, check=False).stdout
    available: set[str] = set()
    package = ""
    for line in policy.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            package = line[:-1]
        elif line.strip().startswith("Candidate:") and line.split(":", 1)[1].strip() != "(none)":
            available.add(package)
    return [p for p in packages if p not in available]


def _setup_progress() -> Progress:
    # apt says how many packages it will install, then "Setting up <pkg>" once for each.
    total = 0
    done = 0

    def progress(line: str) -> str | None:
        nonlocal total, done
        if match := re.search(r"(\d+) newly installed", line):
            total = int(match.group(1))
            return f"{total} packages to install"
        if line.startswith("Setting up "):
            done += 1
            if total and (done == total or done % max(1, total // 4) == 0):
                return f"set up {done}/{total} packages"
        return None

    return progress


def _apt_env() -> dict[str, str]:
    return {**os.environ, **_APT_ENV}


@contextmanager
def _apt_lock() -> Iterator[None]:
    lock_dir = next(d for d in _LOCK_DIRS if d.is_dir())
    with open(lock_dir / "vitalstream-apt.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def _daemons_not_started() -> Iterator[None]:
    """policy-rc.d exits 101 for the duration; the machine's own policy-rc.d, if any, is put back afterwards."""
    saved = _POLICY_RC_D.read_bytes() if _POLICY_RC_D.exists() else None
    saved_stat = _POLICY_RC_D.stat() if saved is not None else None
    _POLICY_RC_D.write_text(_FORBID_DAEMON_START)
    _POLICY_RC_D.chmod(0o755)
    try:
        yield
    finally:
        if saved is None or saved_stat is None:
            _POLICY_RC_D.unlink(missing_ok=True)
        else:
            _POLICY_RC_D.write_bytes(saved)
            _POLICY_RC_D.chmod(saved_stat.st_mode)
            os.utime(_POLICY_RC_D, ns=(saved_stat.st_atime_ns, saved_stat.st_mtime_ns))
