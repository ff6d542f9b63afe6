"""Gathering photos from many messages into one Triton request: full, or as old as the wait allows. Pure.

Time is passed in (monotonic seconds), never read here, so the rules are tested without sleeping.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Batcher(Generic[T]):
    """A FIFO of items that says when a batch is due: `max_batch` items, or the oldest has waited `max_wait_s`."""

    def __init__(self, max_batch: int, max_wait_s: float) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must not be negative, got {max_wait_s}")
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._items: deque[tuple[float, T]] = deque()

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: T, now: float) -> None:
        self._items.append((now, item))

    def due(self, now: float) -> bool:
        """A full batch is waiting, or the oldest item has waited long enough."""
        if not self._items:
            return False
        return len(self._items) >= self.max_batch or now - self._items[0][0] >= self.max_wait_s

    def wait_s(self, now: float) -> float | None:
        """Seconds until a batch is due (0 if it is now); None when empty (nothing will become due)."""
        if not self._items:
            return None
        if self.due(now):
            return 0.0
        return self._items[0][0] + self.max_wait_s - now

    def take(self, now: float) -> list[T]:
        """The oldest `max_batch` items if a batch is due, else nothing."""
        if not self.due(now):
            return []
        count = min(self.max_batch, len(self._items))
        return [self._items.popleft()[1] for _ in range(count)]

    def remove(self, predicate: Callable[[T], bool]) -> list[T]:
        """Take out every item the predicate selects (expired ones, those of revoked partitions), in order."""
        removed = [item for _, item in self._items if predicate(item)]
        if removed:
            self._items = deque((t, item) for t, item in self._items if not predicate(item))
        return removed
