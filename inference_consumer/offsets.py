"""Which offset each partition may commit: the first one whose output is not yet delivered. Pure.

Messages finish out of order (a photo that fails fast overtakes one still at Triton), so a partition's commit
point is its lowest unfinished offset, or one past the highest taken when all are finished. Committing that
never skips a message whose analysis or dead letter Kafka has not acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class _Partition:
    pending: set[int] = field(default_factory=set)
    highest_taken: int = -1
    committed: int = -1


class OffsetTracker:
    """Offsets taken and finished, per partition number (one topic)."""

    def __init__(self) -> None:
        self._partitions: dict[int, _Partition] = {}

    def take(self, partition: int, offset: int) -> bool:
        """Start tracking a consumed message; False if this offset was taken already (a re-delivery)."""
        state = self._partitions.get(partition)
        if state is None:
            # The first offset taken is where the group stood (its commit, or the reset point): nothing to redo.
            state = self._partitions[partition] = _Partition(committed=offset)
        if offset <= state.highest_taken:
            return False
        state.highest_taken = offset
        state.pending.add(offset)
        return True

    def finish(self, partition: int, offset: int) -> None:
        """The message's output is delivered (or it needed none)."""
        state = self._partitions.get(partition)
        if state is not None:
            state.pending.discard(offset)

    def pending(self, partition: int | None = None) -> int:
        """Unfinished messages: of one partition, or of all."""
        if partition is not None:
            state = self._partitions.get(partition)
            return 0 if state is None else len(state.pending)
        return sum(len(s.pending) for s in self._partitions.values())

    def committable(self, partitions: set[int] | None = None) -> dict[int, int]:
        """Partition → the offset to commit (the next one to read), where it moved past the last commit."""
        moved = {}
        for number, state in self._partitions.items():
            if partitions is not None and number not in partitions:
                continue
            position = min(state.pending) if state.pending else state.highest_taken + 1
            if position > state.committed and state.highest_taken >= 0:
                moved[number] = position
        return moved

    def committed(self, offsets: dict[int, int]) -> None:
        """Record commits Kafka accepted."""
        for number, offset in offsets.items():
            state = self._partitions.get(number)
            if state is not None:
                state.committed = max(state.committed, offset)

    def commit_failed(self, partitions: set[int]) -> None:
        """Kafka refused a commit: offer those partitions' positions again next time."""
        for number in partitions:
            state = self._partitions.get(number)
            if state is not None:
                state.committed = -1

    def forget(self, partitions: set[int]) -> None:
        """Partitions revoked: whoever gets them next starts from the last commit."""
        for number in partitions:
            self._partitions.pop(number, None)
