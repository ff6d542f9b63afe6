"""Token buckets, with a fake clock."""

from __future__ import annotations

import pytest

from api.ratelimit import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


def test_a_burst_is_allowed_then_the_rate_refills() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate_per_s=2.0, burst=3, clock=clock)
    assert [buckets.take("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("k") == pytest.approx(0.5)  # one token takes 1/rate s
    clock.now_s += 0.25
    assert buckets.take("k") == pytest.approx(0.25)
    clock.now_s += 0.25
    assert buckets.take("k") == 0.0


def test_a_refused_request_spends_nothing() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate_per_s=1.0, burst=1, clock=clock)
    buckets.take("k")
    for _ in range(5):
        buckets.take("k")
    clock.now_s += 1.0
    assert buckets.take("k") == 0.0


def test_a_bucket_never_holds_more_than_the_burst() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate_per_s=10.0, burst=2, clock=clock)
    buckets.take("k")
    clock.now_s += 3600
    assert [buckets.take("k") > 0 for _ in range(3)] == [False, False, True]


def test_keys_are_independent_and_the_oldest_are_forgotten() -> None:
    buckets = TokenBuckets(rate_per_s=0.001, burst=1, max_keys=2, clock=Clock())
    buckets.take("a")
    assert buckets.take("b") == 0.0 and buckets.take("a") > 0
    buckets.take("c")  # evicts b, the least recently seen
    assert len(buckets) == 2
    assert buckets.take("b") == 0.0  # a forgotten key starts full again


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        TokenBuckets(rate_per_s=0, burst=1)
