"""Token buckets, one per key, held in memory (per process: N workers allow N times the rate)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated_s: float


class TokenBuckets:
    """`take(key)` spends one token; a bucket refills at `rate_per_s` up to `burst`.

    Only the `max_keys` most recently seen keys are kept, so made-up credentials cannot grow memory without bound;
    a key evicted that way starts again with a full bucket, which is the lenient choice.
    Not thread-safe: the middleware calls it from the event loop only.
    """

    def __init__(self, rate_per_s: float, burst: int, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"rate_per_s must be > 0 and burst ≥ 1, got {rate_per_s} and {burst}")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> float:
        """0.0 when a token was spent; otherwise the seconds until the next token (nothing is spent)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated_s=now)
            if len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated_s) * self.rate_per_s)
            bucket.updated_s = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate_per_s

    def __len__(self) -> int:
        return len(self._buckets)
