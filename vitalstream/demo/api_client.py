"""A small HTTP client for the API as a device or an app would use it: waits out 429 and 503, names failures."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

log = logging.getLogger(__name__)

#: Attempts per request when the API answers 429 (rate limit) or 503 (Kafka did not acknowledge in time).
MAX_ATTEMPTS = 8
_RETRYABLE = frozenset({429, 502, 503, 504})


class DemoError(RuntimeError):
    """Something the demo needs did not work; the message says what and where to look."""


class ApiClient:
    """One httpx client on the API's base URL; `call` returns the decoded JSON of a 2xx answer."""

    def __init__(self, base_url: str, timeout_s: float = 30.0) -> None:
        self.base_url = base_url
        self._http = httpx.Client(base_url=base_url, timeout=timeout_s)

    def call(self, method: str, path: str, *, expect: tuple[int, ...] = (200, 201, 202), **kwargs: Any) -> Any:
        """Send a request; 429/5xx-busy answers are retried after Retry-After (or a growing pause)."""
        response = self.send(method, path, **kwargs)
        if response.status_code not in expect:
            raise DemoError(f"{method} {path}: the API answered {response.status_code}: {_detail(response)}")
        return response.json() if response.content else None

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Like `call`, but returns the final response whatever its status (the caller decides)."""
        pause_s = 0.2
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as error:
                if attempt == MAX_ATTEMPTS:
                    raise DemoError(f"{method} {path}: the API at {self.base_url} did not answer ({error})") from error
                time.sleep(pause_s)
                pause_s = min(pause_s * 2, 5.0)
                continue
            if response.status_code not in _RETRYABLE or attempt == MAX_ATTEMPTS:
                return response
            wait_s = _retry_after(response) or pause_s
            log.info("API busy; retrying", extra={"path": path, "status": response.status_code, "wait_s": wait_s})
            time.sleep(wait_s)
            pause_s = min(pause_s * 2, 5.0)
        raise AssertionError("unreachable: the loop returns or raises")

    def close(self) -> None:
        self._http.close()


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return min(float(response.headers["Retry-After"]), 10.0)
    except (KeyError, ValueError):
        return None


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    # The API's one error shape: {"error": {"code", "message", "fields"}}.
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and "message" in error:
        return f"{error.get('code', '')}: {error['message']}"
    return str(body)[:300]
