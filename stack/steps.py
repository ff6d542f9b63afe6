"""Long setup commands (apt, downloads, builds): run to completion, output to a log, progress and duration logged."""

from __future__ import annotations

import logging
import re
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

from stack.base import StackError

logger = logging.getLogger(__name__)

#: Given one output line, returns a progress message worth logging, or None.
Progress = Callable[[str], str | None]

_HEARTBEAT_S = 15.0
_TAIL_LINES = 40


def run_step(cmd: Sequence[str], what: str, *, log: Path | None = None, env: Mapping[str, str] | None = None,
             cwd: Path | None = None, progress: Progress | None = None) -> float:
    """Run `cmd` to completion and return its duration in seconds; StackError (with its last output) if it fails."""
    logger.info("%s: started", what, extra={"step": what})
    tail: deque[str] = deque(maxlen=_TAIL_LINES)
    t0 = last_log = time.monotonic()
    with ExitStack() as stack:
        out = stack.enter_context(open(log, "a")) if log is not None else None
        try:
            proc = stack.enter_context(subprocess.Popen(
                list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                text=True, errors="replace", env=dict(env) if env is not None else None, cwd=cwd))
        except FileNotFoundError as e:
            raise StackError(f"{what}: command not found: {cmd[0]}") from e
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            if out is not None:
                out.write(line)
            message = progress(line) if progress is not None else None
            now = time.monotonic()
            if message is None and now - last_log >= _HEARTBEAT_S:
                message = f"still running ({now - t0:.0f} s)"
            if message is not None:
                logger.info("%s: %s", what, message, extra={"step": what})
                last_log = now
        rc = proc.wait()
    elapsed = time.monotonic() - t0
    if rc != 0:
        where = f"\nfull output: {log}" if log is not None else ""
        raise StackError(f"{what} failed (exit {rc}): {' '.join(cmd)}\n" + "\n".join(tail) + where)
    logger.info("%s: done in %.1f s", what, elapsed, extra={"step": what, "elapsed_s": round(elapsed, 2)})
    return elapsed


def percent_progress(every_pct: int = 10) -> Progress:
    """Progress from make/cmake lines like `[ 42%] Building C object ...`, reported every `every_pct` percent."""
    pattern = re.compile(r"^\[\s*(\d+)%\]")
    reported = -every_pct

    def progress(line: str) -> str | None:
        nonlocal reported
        match = pattern.match(line)
        if match is None or int(match.group(1)) < reported + every_pct:
            return None
        reported = int(match.group(1))
        return f"{reported}%"

    return progress
