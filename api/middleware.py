"""ASGI middleware that refuses requests before any route runs: oversize bodies (413) and rate limits (429).

Both answer in the one error shape (api.errors). They are plain ASGI classes so that a refused body is never read
into memory: a declared Content-Length is checked up front, a streamed body is counted as it arrives.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from api.ratelimit import TokenBuckets

#: Probes must answer even when a client is being throttled.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz"})
#: Headers and query parameters that carry a credential; the first one present names the bucket.
_CREDENTIAL_HEADERS = ("authorization", "x-api-key", "api-secret")
_CREDENTIAL_PARAMS = ("token", "secret")


class BodyTooLargeError(HTTPException):
    """Raised from `receive` while a streamed body passes the limit (FastAPI re-raises HTTPExceptions as they are)."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit_bytes} bytes")


class BodySizeLimit:
    """`max_body_bytes` for every request, except the paths in `route_limits` (exact path → their own limit)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, route_limits: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.route_limits = dict(route_limits or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.route_limits.get(scope["path"], self.max_body_bytes)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            error = BodyTooLargeError(limit)
            await error_response(413, "payload_too_large", str(error.detail))(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        await self.app(scope, counting_receive, send)


def credential_key(scope: Scope) -> str:
    """The bucket a request draws from: a hash of its credential, else its client address.

    Hashing keeps secrets out of memory dumps; a forged credential gets a bucket of its own but is refused by
    authentication anyway, and sign-in attempts (no credential yet) are limited per address.
    """
    headers = Headers(scope=scope)
    for name in _CREDENTIAL_HEADERS:
        value = headers.get(name)
        if value:
            return f"{name}:{hashlib.sha256(value.encode()).hexdigest()}"
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    for name in _CREDENTIAL_PARAMS:
        if query.get(name):
            return f"{name}:{hashlib.sha256(query[name].encode()).hexdigest()}"
    client = scope.get("client")
    return f"client:{client[0] if client else 'unknown'}"


class RateLimit:
    def __init__(self, app: ASGIApp, buckets: TokenBuckets) -> None:
        self.app = app
        self.buckets = buckets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        wait_s = self.buckets.take(credential_key(scope))
        if wait_s > 0:
            retry_after = str(max(1, math.ceil(wait_s)))
            response = error_response(
                429, "rate_limited",
                f"too many requests for this credential ({self.buckets.rate_per_s:g}/s, bursts of "
                f"{self.buckets.burst}); retry after {retry_after} s",
                headers={"Retry-After": retry_after})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
