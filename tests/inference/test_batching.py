"""Batching rules: a batch is due when full or when its oldest photo has waited long enough."""

from __future__ import annotations

import pytest

from inference_consumer.batching import Batcher


def test_a_full_batch_is_due_at_once_and_takes_the_oldest_first() -> None:
    batcher: Batcher[int] = Batcher(max_batch=3, max_wait_s=10.0)
    for item in range(5):
        batcher.add(item, now=0.0)
    assert batcher.due(0.0) and batcher.wait_s(0.0) == 0.0
    assert batcher.take(0.0) == [0, 1, 2]
    assert len(batcher) == 2
    assert not batcher.due(0.0), "two of three, and nobody waited yet"


def test_a_partial_batch_waits_for_its_oldest_item_then_goes() -> None:
    batcher: Batcher[str] = Batcher(max_batch=16, max_wait_s=0.02)
    batcher.add("a", now=1.000)
    batcher.add("b", now=1.015)
    assert batcher.wait_s(1.010) == pytest.approx(0.010)
    assert batcher.take(1.010) == []
    assert batcher.due(1.020)
    assert batcher.take(1.020) == ["a", "b"]
    assert batcher.wait_s(1.020) is None and not batcher.due(99.0)


def test_zero_wait_sends_whatever_is_there() -> None:
    batcher: Batcher[int] = Batcher(max_batch=8, max_wait_s=0.0)
    batcher.add(1, now=5.0)
    assert batcher.take(5.0) == [1]


def test_remove_takes_out_selected_items_and_keeps_the_order_and_arrival_times() -> None:
    batcher: Batcher[int] = Batcher(max_batch=10, max_wait_s=1.0)
    for item, arrived in ((1, 0.0), (2, 0.5), (3, 0.6), (4, 0.7)):
        batcher.add(item, now=arrived)
    assert batcher.remove(lambda item: item % 2 == 1) == [1, 3]
    assert batcher.remove(lambda item: item > 100) == []
    assert not batcher.due(1.4), "the oldest left arrived at 0.5"
    assert batcher.take(1.5) == [2, 4]


@pytest.mark.parametrize(("max_batch", "max_wait_s", "message"), [(0, 1.0, "max_batch"), (1, -0.1, "max_wait_s")])
def test_bad_limits_are_refused_by_name(max_batch: int, max_wait_s: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Batcher(max_batch, max_wait_s)
