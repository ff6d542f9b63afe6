"""What the worker needs when the database rejects a batch for its data: which errors those are, the message a
dead letter may carry, and how a batch's write splits into users' shares and merges back."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import chain

from sqlalchemy.exc import DataError, IntegrityError

from schemas.events import Event
from schemas.meal_analysis import MealAnalyzed
from storage.sink import BatchWrite, WriteResult

#: Longest database message kept in a storage_rejected dead letter.
MAX_REJECTION_CHARS = 300


def is_rejection(error: BaseException) -> bool:
    """The database refused the data itself (SQLSTATE classes 22 and 23): another try fails the same way, but
    the same write without the offending rows succeeds. A missing table or a bug is no rejection: splitting
    would dead-letter every event of a healthy stream."""
    return isinstance(error, DataError | IntegrityError)


def rejection_message(error: BaseException) -> str:
    """The database's one-line message, without the statement and its parameters (other users' values) or the
    DETAIL line (the failing row)."""
    cause = getattr(error, "orig", None) or error
    diag = getattr(cause, "diag", None)
    primary = getattr(diag, "message_primary", None)
    lines = str(cause).strip().splitlines()
    message = primary if isinstance(primary, str) and primary else (lines[0] if lines else type(cause).__name__)
    return message[:MAX_REJECTION_CHARS]


def user_share(write: BatchWrite, user_id: str) -> BatchWrite:
    """The part of a batch's write that belongs to one user: their events and every row derived from them."""
    return BatchWrite(
        events=[e for e in write.events if e.user_id == user_id],
        meal_analyses=[a for a in write.meal_analyses if a.user_id == user_id],
        glucose_metrics=[r for r in write.glucose_metrics if r["user_id"] == user_id],
        user_metrics=[r for r in write.user_metrics if r["user_id"] == user_id],
        risk_tiers=[r for r in write.risk_tiers if r["user_id"] == user_id],
        days=[d for d in write.days if d.user_id == user_id],
        feed=[r for r in write.feed if r["user_id"] == user_id],
    )


def raw_only(events: Sequence[Event]) -> BatchWrite:
    """The raw rows of events (readings, meals, meal analyses) and nothing derived from them."""
    return BatchWrite(events=[e for e in events if not isinstance(e, MealAnalyzed)],
                      meal_analyses=[e for e in events if isinstance(e, MealAnalyzed)])


def merge_writes(writes: Sequence[BatchWrite]) -> BatchWrite:
    return BatchWrite(
        events=list(chain.from_iterable(w.events for w in writes)),
        meal_analyses=list(chain.from_iterable(w.meal_analyses for w in writes)),
        glucose_metrics=list(chain.from_iterable(w.glucose_metrics for w in writes)),
        user_metrics=list(chain.from_iterable(w.user_metrics for w in writes)),
        risk_tiers=list(chain.from_iterable(w.risk_tiers for w in writes)),
        days=list(chain.from_iterable(w.days for w in writes)),
        feed=list(chain.from_iterable(w.feed for w in writes)),
    )


def merge_results(finals: Sequence[WriteResult], probes: Sequence[WriteResult]) -> WriteResult:
    """One result for a batch stored in several transactions.

    `finals` are the writes that stored each share; `probes` wrote some of the same raw rows before (while
    looking for the rejected events): their new rows count, their events do not (the finals count them again).
    """
    merged = WriteResult()
    for result in finals:
        for kind, count in result.events.items():
            merged.events[kind] = merged.events.get(kind, 0) + count
        merged.days += result.days
        merged.feed_rows += result.feed_rows
    for result in chain(finals, probes):
        for kind, count in result.new_rows.items():
            merged.new_rows[kind] = merged.new_rows.get(kind, 0) + count
        merged.seconds += result.seconds
    return merged
