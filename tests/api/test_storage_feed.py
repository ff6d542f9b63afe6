"""storage.feed against the real database: idempotent appends, NOTIFY on commit only, reads after an id."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel
from sqlalchemy import Engine, update

from api.feed_listener import libpq_url
from schemas.derived import Alert, AlertKind, AlertSeverity
from storage.feed import (
    FEED_CHANNEL,
    FeedKind,
    append_feed,
    feed_after,
    feed_row,
    newest_feed_id,
    purge_feed,
    user_feed,
)


def _row(user_id: str, minutes: int = 0, kind: str = "alert") -> dict[str, Any]:
    return {"user_id": user_id, "kind": kind, "payload": {"minutes": minutes},
            "occurred_at": datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=minutes),
            "source_event_id": uuid.uuid4()}


def _user() -> str:
    return f"feed-{uuid.uuid4()}"


def test_appending_twice_stores_once_in_event_time_order(engine: Engine) -> None:
    user = _user()
    rows = [_row(user, 10), _row(user, 0), _row(user, 5)]
    with engine.begin() as connection:
        assert append_feed(connection, rows) == 3
        assert append_feed(connection, [*rows, rows[0]]) == 0
    with engine.connect() as connection:
        stored = feed_after(connection, user, 0, 100)
        assert [r.payload["minutes"] for r in stored] == [0, 5, 10]
        assert newest_feed_id(connection, user) == stored[-1].id
        assert [r.payload["minutes"] for r in feed_after(connection, user, stored[0].id, 100)] == [5, 10]
        assert feed_after(connection, user, stored[0].id, 1)[0].payload["minutes"] == 5
        assert newest_feed_id(connection, _user()) == 0


def test_a_notification_names_the_user_and_goes_out_on_commit_only(engine: Engine, migrated_database: str) -> None:
    user, rolled_back = _user(), _user()
    with psycopg.connect(libpq_url(migrated_database), autocommit=True) as listener:
        listener.execute(f"LISTEN {FEED_CHANNEL}")
        with pytest.raises(RuntimeError), engine.begin() as connection:
            append_feed(connection, [_row(rolled_back)])
            raise RuntimeError("roll back")
        with engine.begin() as connection:
            append_feed(connection, [_row(user), _row(user, 1)])
        with engine.begin() as connection:
            append_feed(connection, [])  # nothing new: no notification
        payloads = [n.payload for n in listener.notifies(timeout=2.0)]
    assert payloads == [user]  # one per user per append, and none for the rolled-back one


def test_derived_events_become_feed_rows(engine: Engine) -> None:
    user = _user()
    at = datetime(2026, 3, 1, 3, tzinfo=UTC)
    alert = Alert(event_id=uuid.uuid4(), user_id=user, trigger_event_id=uuid.uuid4(), occurred_at=at,
                  produced_at=at + timedelta(seconds=1), kind=AlertKind.LEVEL2_HYPOGLYCAEMIA,
                  severity=AlertSeverity.CRITICAL, message="Glucose 48 mg/dL", values={"glucose_mg_dl": 48.0})
    with engine.begin() as connection:
        append_feed(connection, [feed_row(alert)])
        append_feed(connection, [feed_row(alert)])  # a replay of the same event
    with engine.connect() as connection:
        (stored,) = feed_after(connection, user, 0, 10)
    assert stored.kind is FeedKind.ALERT and stored.source_event_id == alert.event_id
    assert stored.payload["values"] == {"glucose_mg_dl": 48.0} and stored.occurred_at == at


def test_unknown_kinds_are_refused(engine: Engine) -> None:
    with pytest.raises(ValueError, match="alarm"), engine.begin() as connection:
        append_feed(connection, [_row(_user(), kind="alarm")])


def test_old_rows_are_purged(engine: Engine) -> None:
    user = _user()
    with engine.begin() as connection:
        append_feed(connection, [_row(user), _row(user, 1)])
        connection.execute(update(user_feed).where(user_feed.c.user_id == user, user_feed.c.payload["minutes"]
                                                   .as_integer() == 0)
                           .values(created_at=datetime.now(UTC) - timedelta(days=40)))
        assert purge_feed(connection, datetime.now(UTC) - timedelta(days=30)) >= 1
        assert [r.payload["minutes"] for r in feed_after(connection, user, 0, 10)] == [1]


class _Analysis(BaseModel):
    """Shaped like a meal analysis: an event id, a user, an event time."""

    event_id: uuid.UUID
    user_id: str
    occurred_at: datetime
    carbs_g: float


def test_other_events_need_their_kind() -> None:
    analysis = _Analysis(event_id=uuid.uuid4(), user_id=_user(), occurred_at=datetime.now(UTC), carbs_g=42.0)
    with pytest.raises(ValueError, match="give the kind of a _Analysis"):
        feed_row(analysis)
    row = feed_row(analysis, FeedKind.MEAL_ANALYSIS)
    assert (row["kind"], row["payload"]["carbs_g"], row["source_event_id"]) == ("meal_analysis", 42.0,
                                                                               analysis.event_id)
