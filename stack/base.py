"""What every local-stack service shares: its folders, detached processes tracked by PID, readiness waits.

A service installs once into `<stack_dir>/cache/<name>` (kept across `down`), runs from
`<stack_dir>/run/<name>` (pid files, logs, data), and is stopped by the PIDs it recorded, never by name.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from vitalstream.config import Settings


class StackError(RuntimeError):
    """A local-stack service could not be installed, started or stopped; the message says why."""


@dataclass(frozen=True)
class TrackedProcess:
    """A PID plus the kernel's start time for it, so a recycled PID is never mistaken for ours."""

    pid: int
    start_ticks: int

    @classmethod
    def of(cls, pid: int) -> TrackedProcess:
        return cls(pid, _start_ticks(pid))

    def alive(self) -> bool:
        try:
            if _start_ticks(self.pid) != self.start_ticks:
                return False
            # A multi-threaded process (a JVM) shows its main thread as a zombie while the others are
            # still shutting down, and still holding its ports.
            return _state(self.pid) != "Z" or len(os.listdir(f"/proc/{self.pid}/task")) > 1
        except OSError:
            return False

    def dump(self) -> str:
        return f"{self.pid} {self.start_ticks}\n"

    @classmethod
    def load(cls, path: Path) -> TrackedProcess | None:
        try:
            pid, ticks = path.read_text().split()
            return cls(int(pid), int(ticks))
        except (OSError, ValueError):
            return None


def _stat_fields(pid: int) -> list[str]:
    # The command name (field 2) may contain spaces; everything after its closing paren is fixed.
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _start_ticks(pid: int) -> int:
    return int(_stat_fields(pid)[19])


def _state(pid: int) -> str:
    return _stat_fields(pid)[0]


def _session(pid: int) -> int:
    return int(_stat_fields(pid)[3])


def session_members(sid: int) -> list[TrackedProcess]:
    """Live processes in session `sid`, its leader excluded: the children a spawned service left around."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == sid:
            continue
        try:
            if _session(int(entry.name)) == sid:
                members.append(TrackedProcess.of(int(entry.name)))
        except (OSError, ValueError, IndexError):
            continue  # it exited while we looked
    return members


def _orphaned_session(proc: TrackedProcess) -> bool:
    # A dead leader's session may live on in its children. If the PID was reused by a new session
    # leader, that session is someone else's.
    try:
        return _session(proc.pid) != proc.pid
    except (OSError, ValueError, IndexError):
        return True


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True if something accepts TCP connections on host:port."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str,
               alive: Callable[[], bool] | None = None, log: Path | None = None) -> float:
    """Poll `predicate` until true; returns seconds waited. Fails early if `alive` says the process died."""
    t0 = time.monotonic()
    while not predicate():
        if alive is not None and not alive():
            raise StackError(f"{what}: process exited before it was ready{_tail(log)}")
        if time.monotonic() - t0 > timeout_s:
            raise StackError(f"{what}: not ready after {timeout_s:.0f} s{_tail(log)}")
        time.sleep(0.1)
    return time.monotonic() - t0


def _tail(log: Path | None, lines: int = 30) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"\n--- last lines of {log} ---\n" + "\n".join(text)


class Service(ABC):
    """One service of the local stack. Subclasses say how to install, start and probe it."""

    name: ClassVar[str]
    #: The 12-factor variable which, when set, points at an external instance: then nothing is started.
    env_var: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cache_dir = settings.stack_dir / "cache" / self.name
        self.run_dir = settings.stack_dir / "run" / self.name

    # -- what subclasses provide -------------------------------------------------------------
    @abstractmethod
    def install(self) -> None:
        """Install into `cache_dir` if not there yet. Idempotent, and fast once cached."""

    @abstractmethod
    def start(self) -> None:
        """Start detached (recording PIDs with `spawn`), not waiting for readiness."""

    @abstractmethod
    def ready(self) -> bool:
        """True once the service answers real requests."""

    @abstractmethod
    def address(self) -> str:
        """How clients reach it (bootstrap servers, URL, host:port)."""

    startup_timeout_s: ClassVar[float] = 120.0

    # -- what subclasses may provide -----------------------------------------------------------
    def ports(self) -> dict[str, int]:
        """Ports it listens on, by the Settings field that sets each: checked free before a start."""
        return {}

    def refresh(self) -> None:  # noqa: B027 (an optional hook: most services have nothing to refresh)
        """Called by `stack up` when the service is already running (e.g. to reload a changed config)."""

    # -- shared behaviour --------------------------------------------------------------------
    @property
    def external(self) -> bool:
        return bool(os.environ.get(self.env_var))

    def external_address(self) -> str:
        """The external instance's address as configured, with any password masked."""
        return mask_password(os.environ.get(self.env_var, ""))

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    def log_files(self) -> list[Path]:
        """Every log `stack logs` shows, in start order."""
        return [self.log_file]

    def pid_files(self) -> list[Path]:
        """This service's pid files, in start order."""
        return sorted(self.run_dir.glob("*.pid"), key=lambda p: p.stat().st_mtime_ns)

    def processes(self) -> list[TrackedProcess]:
        return [p for f in self.pid_files() if (p := TrackedProcess.load(f)) is not None]

    def running(self) -> bool:
        procs = self.processes()
        return bool(procs) and all(p.alive() for p in procs)

    def spawn(self, label: str, cmd: Sequence[str], env: Mapping[str, str] | None = None,
              log: Path | None = None, cwd: Path | None = None) -> TrackedProcess:
        """Start `cmd` in its own session (it outlives this process) and record it in `<label>.pid`."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        log = log or self.log_file
        with open(log, "ab") as out:
            proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=dict(env) if env is not None else None, cwd=cwd,
                                    start_new_session=True)
        tracked = TrackedProcess.of(proc.pid)
        self.record(label, tracked)
        return tracked

    def record(self, label: str, proc: TrackedProcess) -> None:
        """Remember a process this service owns (for daemons that fork, record the final PID)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / f"{label}.pid").write_text(proc.dump())

    def wait_ready(self) -> float:
        """Block until ready; returns the seconds waited."""
        procs = self.processes()
        return wait_until(self.ready, self.startup_timeout_s, self.name,
                          alive=(lambda: all(p.alive() for p in procs)) if procs else None,
                          log=self.log_file)

    def stop(self, timeout_s: float = 20.0, sig: int = signal.SIGTERM) -> None:
        """Stop what this service started, newest first: `sig`, then SIGKILL after `timeout_s`.

        Children left in a stopped process's session (spawn gives each its own) are stopped too.
        """
        for pid_file in reversed(self.pid_files()):
            proc = TrackedProcess.load(pid_file)
            if proc is not None:
                alive = proc.alive()
                children = session_members(proc.pid) if alive or _orphaned_session(proc) else []
                if alive:
                    terminate(proc, timeout_s, sig)
                for child in children:
                    if child.alive():
                        terminate(child, 5.0)
            pid_file.unlink(missing_ok=True)


def processes_mentioning(paths: Sequence[Path]) -> list[tuple[int, str]]:
    """(pid, command line) of live processes whose command line names one of `paths` (or a file below it).

    This process and its ancestors are left out: they may name a stack folder without belonging to it.
    """
    patterns = [re.compile(re.escape(str(p)) + r"(?=/|:|=|\s|$)") for p in paths]
    mine = _ancestry(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if cmdline and any(p.search(cmdline) for p in patterns):
            found.append((int(entry.name), cmdline))
    return found


def _ancestry(pid: int) -> set[int]:
    chain = set()
    while pid > 1 and pid not in chain:
        chain.add(pid)
        try:
            pid = int(_stat_fields(pid)[1])
        except (OSError, ValueError, IndexError):
            break
    return chain


def mask_password(url: str) -> str:
    """`scheme://user:secret@host` -> `scheme://user:***@host`; anything else unchanged."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"


def terminate(proc: TrackedProcess, timeout_s: float, sig: int = signal.SIGTERM) -> None:
    """Signal one tracked process and wait for it to go; SIGKILL if it will not."""
    try:
        os.kill(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        wait_until(lambda: _gone(proc), timeout_s, f"pid {proc.pid}")
    except StackError:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        wait_until(lambda: _gone(proc), 10.0, f"pid {proc.pid} after SIGKILL")


def _gone(proc: TrackedProcess) -> bool:
    if proc.alive():
        return False
    # If this process started it (a long-lived caller such as pytest), reap it so no zombie is left;
    # otherwise its own parent (or init) does.
    try:
        reaped, _ = os.waitpid(proc.pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return reaped != 0  # 0: our child, not finished exiting yet
