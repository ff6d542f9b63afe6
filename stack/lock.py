"""One `stack up`/`down` at a time per stack folder, across processes (two shells, pytest-xdist workers)."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from stack.base import StackError


@contextmanager
def stack_lock(stack_dir: Path, timeout_s: float = 900.0,
               on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold an exclusive lock on `<stack_dir>/stack.lock`; the kernel drops it if the holder dies.

    The timeout is long because the holder may be doing a first-run install.
    """
    stack_dir.mkdir(parents=True, exist_ok=True)
    path = stack_dir / "stack.lock"
    with open(path, "a+") as handle:
        t0 = time.monotonic()
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told and on_wait is not None:
                    handle.seek(0)
                    holder = handle.read().strip() or "?"
                    on_wait(f"waiting for another stack command on {stack_dir} (pid {holder})")
                    told = True
                if time.monotonic() - t0 > timeout_s:
                    raise StackError(f"{path} still locked after {timeout_s:.0f} s by another stack command") from None
                time.sleep(0.2)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
