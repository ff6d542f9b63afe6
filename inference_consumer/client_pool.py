"""Threads that each own one Triton client and run jobs with it.

A plain ThreadPoolExecutor would do, but for one thing: tritonclient's HTTP client lives on gevent and must be
made, used and closed in the same thread. Here each thread makes its client when it starts and closes it when
it stops, and a job receives the client of whichever thread runs it.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from inference_consumer.triton_client import TritonClient

log = logging.getLogger(__name__)
R = TypeVar("R")

_Job = tuple[Callable[[TritonClient], Any], Future[Any]]


class ClientPool:
    def __init__(self, size: int, make_client: Callable[[], TritonClient], name: str = "triton") -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, got {size}")
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._make_client = make_client
        self._threads = [threading.Thread(target=self._serve, name=f"{name}-{i}", daemon=True) for i in range(size)]
        for thread in self._threads:
            thread.start()

    def submit(self, job: Callable[[TritonClient], R]) -> Future[R]:
        future: Future[R] = Future()
        self._jobs.put((job, future))
        return future

    def close(self, timeout_s: float = 30.0) -> None:
        """Let queued jobs finish, then stop every thread (closing its client)."""
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("triton client thread still busy after %.0f s; leaving it", timeout_s,
                            extra={"thread": thread.name})

    def _serve(self) -> None:
        client = self._make_client()
        try:
            while (item := self._jobs.get()) is not None:
                job, future = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(job(client))
                except Exception as error:  # handed to whoever waits on the future
                    future.set_exception(error)
        finally:
            client.close()
