"""The demo's child processes: the stream worker, the inference consumer and the API, each a `vitalstream`
command started in a session of its own (so Ctrl-C reaches the demo only, which then stops them in order),
recorded by PID (and start time) under <stack_dir>/run/demo/, logging to <name>.log there, stopped by PID.

A demo that was killed leaves pid files behind; the next one stops those processes before starting its own.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from stack.base import TrackedProcess, port_open, session_members, terminate
from vitalstream.config import Settings
from vitalstream.demo.api_client import DemoError

log = logging.getLogger(__name__)

Say = Callable[[str], None]
READY_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class ChildSpec:
    name: str
    #: The `vitalstream` command line, without the program name.
    args: tuple[str, ...]
    port: int
    #: The variable that sets the port, for error messages.
    port_variable: str
    #: Answers 200 once the child serves.
    ready_path: str
    stop_timeout_s: float


def child_specs(settings: Settings) -> list[ChildSpec]:
    """In start order: the workers first (they create their topics and join their groups), the API last."""
    return [
        ChildSpec("streams", ("worker", "streams"), settings.streams_metrics_port,
                  "VITALSTREAM_STREAMS_METRICS_PORT", "/metrics", 30.0),
        ChildSpec("inference", ("worker", "inference"), settings.inference_metrics_port,
                  "VITALSTREAM_INFERENCE_METRICS_PORT", "/metrics", 20.0),
        ChildSpec("api", ("api", "--port", str(settings.api_port)), settings.api_port,
                  "VITALSTREAM_API_PORT", "/healthz", 15.0),
    ]


def vitalstream_command(*args: str) -> list[str]:
    """The CLI of this installation: the console script beside the interpreter, or the module through it."""
    script = Path(sys.executable).with_name("vitalstream")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from vitalstream.cli import main; main()", *args]


class Child:
    def __init__(self, spec: ChildSpec, run_dir: Path) -> None:
        self.spec = spec
        self.pid_file = run_dir / f"{spec.name}.pid"
        self.log_file = run_dir / f"{spec.name}.log"
        self.process: TrackedProcess | None = TrackedProcess.load(self.pid_file)

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def start(self, env: Mapping[str, str]) -> None:
        if port_open(self.spec.port):
            raise DemoError(f"{self.spec.name}: port {self.spec.port} ({self.spec.port_variable}) is already in use; "
                            "stop what listens there (another demo, `vitalstream api`, a worker) or choose another "
                            "port")
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "wb") as out:  # a fresh log per run
            popen = subprocess.Popen(vitalstream_command(*self.spec.args), stdout=out, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=dict(env), start_new_session=True)
        self.process = TrackedProcess.of(popen.pid)
        self.pid_file.write_text(self.process.dump())
        log.info("child started", extra={"child": self.spec.name, "pid": popen.pid, "log": str(self.log_file)})

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.spec.port}{self.spec.ready_path}",
                                        timeout=2.0) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> float:
        started = time.monotonic()
        while not self.ready():
            if not self.alive():
                raise DemoError(f"{self.spec.name}: exited before it was ready{self.tail()}")
            if time.monotonic() - started > timeout_s:
                raise DemoError(f"{self.spec.name}: not ready after {timeout_s:.0f} s{self.tail()}")
            time.sleep(0.2)
        return time.monotonic() - started

    def stop(self) -> bool:
        """SIGTERM, then SIGKILL after the spec's timeout; also whatever it left in its session. True if it ran."""
        process = self.process
        was_alive = process is not None and process.alive()
        if process is not None:
            children = session_members(process.pid) if was_alive else []
            if was_alive:
                terminate(process, self.spec.stop_timeout_s, signal.SIGTERM)
            for child in children:
                if child.alive():
                    terminate(child, 5.0)
        self.pid_file.unlink(missing_ok=True)
        self.process = None
        return was_alive

    def tail(self, lines: int = 25) -> str:
        if not self.log_file.exists():
            return ""
        text = self.log_file.read_text(errors="replace").splitlines()[-lines:]
        return f"\n--- last lines of {self.log_file} ---\n" + "\n".join(text)


class Children:
    """All three children, started and stopped together."""

    def __init__(self, settings: Settings) -> None:
        self.run_dir = settings.stack_dir / "run" / "demo"
        self.children = [Child(spec, self.run_dir) for spec in child_specs(settings)]

    def stop_leftovers(self, say: Say) -> None:
        """Stop processes an earlier demo recorded and left running (it was killed before it could stop them)."""
        for child in self.children:
            if child.alive():
                assert child.process is not None
                say(f"{child.spec.name}: an earlier demo left it running (pid {child.process.pid}); stopping it")
                child.stop()
            else:
                child.pid_file.unlink(missing_ok=True)

    def start(self, env: Mapping[str, str], say: Say) -> None:
        for child in self.children:
            say(f"{child.spec.name}: starting `vitalstream {' '.join(child.spec.args)}` (log {child.log_file})")
            child.start(env)
        for child in self.children:
            waited = child.wait_ready()
            say(f"{child.spec.name}: ready in {waited:.1f} s (pid {child.process.pid if child.process else '?'}, "
                f"port {child.spec.port})")

    def stop(self, say: Say) -> None:
        """Newest first: the API (no new uploads), then the consumers, which commit what they have done."""
        for child in reversed(self.children):
            if child.alive():
                say(f"{child.spec.name}: stopping (pid {child.process.pid if child.process else '?'})")
            child.stop()

    def dead(self) -> list[Child]:
        return [child for child in self.children if not child.alive()]


def child_environment(settings: Settings, jwt_secret: str) -> dict[str, str]:
    """This process's environment (so the children read the same settings), plus a signing key for the API."""
    env = dict(os.environ)
    env.setdefault("VITALSTREAM_JWT_SECRET", jwt_secret)
    # Children run as long as the demo: their logs should reach the file as they happen.
    env["PYTHONUNBUFFERED"] = "1"
    # An installed copy keeps its stack in the working directory: pin it, so every child uses this one.
    env["VITALSTREAM_STACK_DIR"] = str(settings.stack_dir)
    return env
