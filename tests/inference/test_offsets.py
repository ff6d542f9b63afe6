"""Commit points: never past a message whose output Kafka has not acknowledged."""

from __future__ import annotations

from inference_consumer.offsets import OffsetTracker


def test_the_commit_point_stops_at_the_first_unfinished_offset() -> None:
    tracker = OffsetTracker()
    for offset in range(10, 15):
        assert tracker.take(0, offset)
    assert tracker.committable() == {}, "nothing finished, nothing to commit beyond where we started"
    tracker.finish(0, 12)
    tracker.finish(0, 13)  # finished out of order: 10 and 11 are still at Triton
    assert tracker.committable() == {}
    tracker.finish(0, 10)
    assert tracker.committable() == {0: 11}
    tracker.finish(0, 11)
    assert tracker.committable() == {0: 14}
    tracker.finish(0, 14)
    assert tracker.committable() == {0: 15}
    assert tracker.pending() == 0


def test_only_moves_are_reported_and_partitions_are_independent() -> None:
    tracker = OffsetTracker()
    tracker.take(1, 0)
    tracker.take(2, 7)
    tracker.finish(1, 0)
    assert tracker.committable() == {1: 1}
    tracker.committed({1: 1})
    assert tracker.committable() == {}
    tracker.finish(2, 7)
    assert tracker.committable() == {2: 8}
    assert tracker.committable({1}) == {}


def test_a_redelivered_offset_is_not_taken_twice() -> None:
    tracker = OffsetTracker()
    assert tracker.take(0, 5)
    assert not tracker.take(0, 5)
    assert not tracker.take(0, 4), "below the highest taken: librdkafka fetched it again after a pause"
    assert tracker.pending(0) == 1


def test_a_failed_commit_is_offered_again() -> None:
    tracker = OffsetTracker()
    tracker.take(3, 0)
    tracker.finish(3, 0)
    tracker.committed({3: 1})
    tracker.commit_failed({3})
    assert tracker.committable() == {3: 1}


def test_forgotten_partitions_start_afresh_and_late_finishes_are_ignored() -> None:
    tracker = OffsetTracker()
    tracker.take(4, 100)
    tracker.forget({4})
    tracker.finish(4, 100)  # a delivery report after the revoke
    assert tracker.committable() == {} and tracker.pending() == 0
    assert tracker.take(4, 90), "the next owner starts from the last commit"
