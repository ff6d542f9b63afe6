"""Bring the local stack up and down: idempotent, one caller at a time, and leaving no process behind.

`up` installs on first run, starts, waits until each service answers, and leaves running ones alone.
A service whose 12-factor variable is set (e.g. KAFKA_BOOTSTRAP_SERVERS) is external: nothing is started.
`<stack_dir>/stack.json` records the addresses and the first run's install and start times.

Test sessions start services as *ephemeral* under a `Lease`: the last session to release its lease stops
the ephemeral services, so parallel pytest workers share one stack and CI leaves nothing running.
Services started from the command line are never stopped by a test session.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from stack.base import Service, StackError, TrackedProcess, port_open, processes_mentioning
from stack.lock import stack_lock
from stack.services import SERVICES, service
from vitalstream.config import Settings

log = logging.getLogger(__name__)

State = Literal["running", "stopped", "external", "degraded", "unavailable"]
Progress = Callable[[str], None]
_EPHEMERAL_MARKER = "ephemeral"


@dataclass
class ServiceStatus:
    """One service as a command left it. `seconds` is what that command spent on it (uptime for `status`)."""

    name: str
    state: State
    address: str
    pids: list[int] = field(default_factory=list)
    seconds: float | None = None
    note: str = ""
    install_s: float | None = None
    start_s: float | None = None


@dataclass
class StackStatus:
    services: list[ServiceStatus]
    total_s: float = 0.0

    def __getitem__(self, name: str) -> ServiceStatus:
        for s in self.services:
            if s.name == name:
                return s
        raise KeyError(name)


def up(settings: Settings, names: Sequence[str] | None = None, progress: Progress | None = None, *,
       ephemeral: bool = False) -> StackStatus:
    """Start the named services (default: all), in dependency order; return how each was found or left.

    `ephemeral` marks the services this call starts as a test session's (see `Lease`); without it, a
    running ephemeral service is adopted and will no longer be stopped by a test session.
    """
    settings = _absolute(settings)
    say = progress or _quiet
    t0 = time.monotonic()
    ordered = _ordered(names)
    results: list[ServiceStatus] = []
    with stack_lock(settings.stack_dir, on_wait=say):
        first_run = first_run_times(settings)
        try:
            for name in ordered:
                results.append(_up_one(_build(name, settings), say, ephemeral, first_run))
        finally:
            _write_state(settings, first_run)
    total = time.monotonic() - t0
    log.info("stack up", extra={"services": [s.name for s in results], "total_s": round(total, 2)})
    return StackStatus(results, total)


def down(settings: Settings, names: Sequence[str] | None = None, wipe: bool = False,
         progress: Progress | None = None) -> StackStatus:
    """Stop the named services (default: all), newest first, by PID; `wipe` also deletes their data and logs.

    Raises StackError if any process whose command line names a stopped service's folders is left.
    """
    settings = _absolute(settings)
    say = progress or _quiet
    t0 = time.monotonic()
    with stack_lock(settings.stack_dir, on_wait=say):
        results = _down_locked(settings, list(reversed(_ordered(names))), wipe, say)
    return StackStatus(results, time.monotonic() - t0)


def status(settings: Settings, names: Sequence[str] | None = None) -> StackStatus:
    """How each service is now, without changing anything; services whose module is missing are `unavailable`."""
    settings = _absolute(settings)
    results = []
    for name in _ordered(names):
        try:
            svc = _build(name, settings)
        except StackError as err:
            results.append(ServiceStatus(name, "unavailable", "", note=str(err)))
            continue
        results.append(_status_of(svc))
    return StackStatus(results)


def logs(settings: Settings, name: str) -> list[Path]:
    """The named service's log files (some may not exist yet)."""
    (known,) = _ordered([name])
    return _build(known, _absolute(settings)).log_files()


def first_run_times(settings: Settings) -> dict[str, dict[str, Any]]:
    """Install and start seconds of each service's first `up` in this stack folder."""
    first: dict[str, dict[str, Any]] = _read_state(_absolute(settings)).get("first_run", {})
    return first


def stack_processes(settings: Settings) -> list[tuple[int, str]]:
    """Every live process whose command line names this stack's run or cache folders."""
    settings = _absolute(settings)
    return processes_mentioning([settings.stack_dir / "run", settings.stack_dir / "cache"])


class Lease:
    """A test session's claim on the stack; the last session to release stops what test sessions started."""

    def __init__(self, settings: Settings) -> None:
        self.settings = _absolute(settings)
        me = TrackedProcess.of(os.getpid())
        self.path = self.settings.stack_dir / "leases" / f"{me.pid}-{me.start_ticks}"

    def acquire(self) -> Lease:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(TrackedProcess.of(os.getpid()).dump())
        return self

    def up(self, names: Sequence[str], progress: Progress | None = None) -> StackStatus:
        return up(self.settings, names, progress, ephemeral=True)

    def release(self, keep: bool = False, progress: Progress | None = None) -> StackStatus | None:
        """Drop this lease; if no live lease is left (and not `keep`), stop the ephemeral services."""
        with stack_lock(self.settings.stack_dir, on_wait=progress):
            self.path.unlink(missing_ok=True)
            live = False
            for other in self.path.parent.glob("*-*"):
                holder = TrackedProcess.load(other)
                if holder is not None and holder.alive():
                    live = True
                else:
                    other.unlink(missing_ok=True)  # its session died without releasing
            if live or keep:
                return None
            names = [name for name in SERVICES if (self.settings.stack_dir / "run" / name / _EPHEMERAL_MARKER).exists()]
            if not names:
                return None
            return StackStatus(_down_locked(self.settings, list(reversed(names)), False, progress or _quiet))


# -- one service ---------------------------------------------------------------------------------
def _up_one(svc: Service, say: Progress, ephemeral: bool, first_run: dict[str, dict[str, Any]]) -> ServiceStatus:
    marker = svc.run_dir / _EPHEMERAL_MARKER
    if svc.external:
        return ServiceStatus(svc.name, "external", svc.external_address(), note=f"external: {svc.external_address()}")
    t0 = time.monotonic()
    if svc.running():
        if not svc.ready():
            say(f"{svc.name}: running, waiting until it answers")
            svc.wait_ready()
        svc.refresh()
        if not ephemeral:
            marker.unlink(missing_ok=True)
        return ServiceStatus(svc.name, "running", svc.address(), _pids(svc), time.monotonic() - t0,
                             note="already running")
    # Some of its processes died: clear out the rest before starting afresh.
    svc.stop()
    _check_ports_free(svc)

    say(f"{svc.name}: installing (first run only)")
    svc.install()
    install_s = time.monotonic() - t0
    # A first run's install counts even if its start then fails.
    first = first_run.setdefault(svc.name, {"at": datetime.now(UTC).isoformat(timespec="seconds")})
    first.setdefault("install_s", round(install_s, 2))
    say(f"{svc.name}: starting")
    try:
        svc.start()
        svc.wait_ready()
    except BaseException:
        svc.stop()
        raise
    start_s = time.monotonic() - t0 - install_s
    first.setdefault("start_s", round(start_s, 2))
    if ephemeral:
        marker.write_text("started by a test session; the last session to finish stops it\n")
    else:
        marker.unlink(missing_ok=True)
    log.info("%s started", svc.name, extra={"service": svc.name, "install_s": round(install_s, 2),
                                            "start_s": round(start_s, 2), "address": svc.address()})
    return ServiceStatus(svc.name, "running", svc.address(), _pids(svc), install_s + start_s,
                         note="started", install_s=install_s, start_s=start_s)


def _down_locked(settings: Settings, names: Sequence[str], wipe: bool, say: Progress) -> list[ServiceStatus]:
    results = []
    problems = []
    for name in names:
        try:
            svc = _build(name, settings)
        except StackError as err:  # its module is missing: nothing of it can have been started
            results.append(ServiceStatus(name, "unavailable", "", note=str(err)))
            continue
        was_running = any(p.alive() for p in svc.processes())
        # What we started is stopped even if the variable now points elsewhere: nothing is left behind.
        if svc.external and not was_running:
            results.append(ServiceStatus(name, "external", svc.external_address(),
                                         note="external: not ours to stop"))
            continue
        t0 = time.monotonic()
        if was_running:
            say(f"{name}: stopping")
        svc.stop()
        (svc.run_dir / _EPHEMERAL_MARKER).unlink(missing_ok=True)
        left = processes_mentioning([svc.run_dir, svc.cache_dir])
        if left:
            listing = "\n".join(f"  pid {pid}: {cmd[:200]}" for pid, cmd in left)
            problems.append(f"{name}: processes still name {svc.run_dir} or {svc.cache_dir} after stopping "
                            f"what was recorded; stop them and run again:\n{listing}")
            results.append(ServiceStatus(name, "degraded", svc.address(), [pid for pid, _ in left],
                                         time.monotonic() - t0, note="processes left behind"))
            continue
        if wipe:
            shutil.rmtree(svc.run_dir, ignore_errors=True)
        note = "stopped" if was_running else "was not running"
        results.append(ServiceStatus(name, "stopped", svc.address(), [], time.monotonic() - t0,
                                     note=note + (", data wiped" if wipe else "")))
        log.info("%s %s", name, note, extra={"service": name, "wipe": wipe})
    _write_state(settings, first_run_times(settings))
    if problems:
        raise StackError("\n".join(problems))
    return results


def _status_of(svc: Service) -> ServiceStatus:
    procs = svc.processes()
    alive = [p for p in procs if p.alive()]
    if svc.external and not alive:
        return ServiceStatus(svc.name, "external", svc.external_address(), note=f"external: {svc.external_address()}")
    state: State = "stopped"
    if alive:
        state = "running" if len(alive) == len(procs) else "degraded"
    uptime = time.time() - min(_started_at(p) for p in alive) if alive else None
    note = "started by a test session" if (svc.run_dir / _EPHEMERAL_MARKER).exists() and alive else ""
    if svc.external:
        note = f"{svc.env_var} is set: clients use {svc.external_address()}"
    return ServiceStatus(svc.name, state, svc.address(), [p.pid for p in alive], uptime, note=note)


def _check_ports_free(svc: Service) -> None:
    for setting, port in svc.ports().items():
        if port_open(port):
            strays = processes_mentioning([svc.run_dir, svc.cache_dir])
            hint = "".join(f"\n  pid {pid} names this stack's {svc.name} folders: {cmd[:160]}" for pid, cmd in strays)
            raise StackError(f"{svc.name}: port {port} ({setting}, env VITALSTREAM_{setting.upper()}) is already "
                             f"in use by another process; stop it or choose another port{hint}")


# -- helpers -------------------------------------------------------------------------------------
def _absolute(settings: Settings) -> Settings:
    # Services pass their folders to processes started elsewhere (cwd = their run folder).
    if settings.stack_dir.is_absolute():
        return settings
    return settings.model_copy(update={"stack_dir": settings.stack_dir.resolve()})


def _ordered(names: Sequence[str] | None) -> list[str]:
    if names is None or len(names) == 0:
        return list(SERVICES)
    unknown = [n for n in names if n not in SERVICES]
    if unknown:
        raise StackError(f"unknown service {', '.join(map(repr, unknown))}; known: {', '.join(SERVICES)}")
    return [n for n in SERVICES if n in names]


def _build(name: str, settings: Settings) -> Service:
    try:
        return service(name, settings)
    except ImportError as err:
        raise StackError(f"{name}: its stack module is not available ({err})") from err


def _pids(svc: Service) -> list[int]:
    return [p.pid for p in svc.processes() if p.alive()]


def _started_at(proc: TrackedProcess) -> float:
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                if line.startswith("btime "))
    return boot + proc.start_ticks / ticks_per_s


def _quiet(_message: str) -> None:
    return None


def _state_file(settings: Settings) -> Path:
    return settings.stack_dir / "stack.json"


def _read_state(settings: Settings) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(_state_file(settings).read_text())
        return state
    except (OSError, ValueError):
        return {}


def _write_state(settings: Settings, first_run: dict[str, dict[str, Any]]) -> None:
    """Rewrite stack.json: every available service's address and state, plus first-run timings."""
    services = {s.name: {k: v for k, v in asdict(s).items() if k in ("state", "address", "pids")}
                for s in status(settings).services if s.state != "unavailable"}
    state = {"stack_dir": str(settings.stack_dir), "updated": datetime.now(UTC).isoformat(timespec="seconds"),
             "services": services, "first_run": first_run}
    path = _state_file(settings)
    partial = path.with_suffix(".json.partial")
    partial.write_text(json.dumps(state, indent=2) + "\n")
    partial.replace(path)
