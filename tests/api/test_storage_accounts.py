"""storage.accounts against the real TimescaleDB: claims under concurrency, expiry, and the migration itself."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, func, select

from storage.accounts import (
    Role,
    StoredResponse,
    claim_event_ids,
    claim_idempotency_key,
    create_user,
    purge_expired,
    save_idempotent_response,
    set_role,
    user_by_email,
)
from storage.tables import accepted_events, metadata

NOW = datetime.now(UTC)
LATER = NOW + timedelta(days=1)
ACCOUNT_TABLES = {"users", "refresh_tokens", "device_keys", "clinician_grants", "nightscout_secrets",
                  "idempotency_keys", "accepted_events"}


def in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    return thread, result


@pytest.fixture
def user_id() -> str:
    return f"storage-test-{uuid.uuid4()}"


def test_the_migration_matches_the_table_definitions(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)

    def mentions_an_account_table(diff: Any) -> bool:
        # Diffs are tuples (op, object or schema, table name, …) or, for column changes, lists of such tuples.
        parts = diff if isinstance(diff, tuple) else [part for change in diff for part in change]
        for part in parts:
            names = {part} if isinstance(part, str) else {getattr(part, "name", None),
                                                          getattr(getattr(part, "table", None), "name", None)}
            if names & ACCOUNT_TABLES:
                return True
        return False

    assert [d for d in differences if mentions_an_account_table(d)] == []


@pytest.mark.parametrize("first_commits", [True, False], ids=["first commits", "first rolls back"])
def test_a_concurrent_claim_waits_for_the_first_and_sees_its_outcome(engine: Engine, user_id: str,
                                                                     first_commits: bool) -> None:
    ids = [uuid.uuid4(), uuid.uuid4()]
    first = engine.connect()
    transaction = first.begin()
    assert claim_event_ids(first, user_id, ids, NOW, LATER) == set(ids)

    def second_claim() -> set[UUID]:
        with engine.begin() as connection:
            return claim_event_ids(connection, user_id, [ids[1], ids[0]], NOW, LATER)

    thread, result = in_thread(second_claim)
    thread.join(timeout=1.0)
    assert thread.is_alive(), "the second claim should wait on the first one's rows"
    (transaction.commit if first_commits else transaction.rollback)()
    first.close()
    thread.join(timeout=10)
    # Committed: the events went out, nothing is left to publish. Rolled back: the second request publishes them.
    assert result == [set() if first_commits else set(ids)]


def test_an_expired_event_record_can_be_claimed_again_and_is_purged(engine: Engine, user_id: str) -> None:
    event_id = uuid.uuid4()
    with engine.begin() as connection:
        assert claim_event_ids(connection, user_id, [event_id], NOW - timedelta(days=2), NOW - timedelta(days=1))
        assert claim_event_ids(connection, user_id, [event_id], NOW, LATER) == {event_id}
        assert claim_event_ids(connection, user_id, [event_id], NOW, LATER) == set()
        assert claim_event_ids(connection, user_id, [event_id, event_id], NOW, LATER) == set()

        expired_id = uuid.uuid4()
        claim_event_ids(connection, user_id, [expired_id], NOW - timedelta(days=2), NOW - timedelta(days=1))
        purge_expired(connection, NOW)
        left = connection.execute(select(accepted_events.c.event_id)
                                  .where(accepted_events.c.user_id == user_id)).scalars().all()
    assert left == [event_id]


def test_an_idempotency_key_is_claimed_once_then_replays_its_response(engine: Engine, user_id: str) -> None:
    with engine.begin() as connection:
        assert claim_idempotency_key(connection, user_id, "k1", "hash-a", NOW, LATER) is None
        save_idempotent_response(connection, user_id, "k1", 202, {"accepted": 1})
        assert claim_idempotency_key(connection, user_id, "k1", "hash-b", NOW, LATER) == StoredResponse(
            request_sha256="hash-a", status_code=202, response={"accepted": 1})
        assert claim_idempotency_key(connection, f"{user_id}-other", "k1", "hash-b", NOW, LATER) is None

        claim_idempotency_key(connection, user_id, "old", "hash-a", NOW - timedelta(days=2), NOW - timedelta(days=1))
        assert claim_idempotency_key(connection, user_id, "old", "hash-c", NOW, LATER) is None  # expired: free


def test_roles_are_changed_by_address(engine: Engine) -> None:
    email = f"Role-{uuid.uuid4().hex[:8]}@Example.org"
    with engine.begin() as connection:
        create_user(connection, email, "$argon2id$placeholder", Role.USER, NOW)
        changed = set_role(connection, email.lower(), Role.ADMIN)
        assert changed is not None and changed.role is Role.ADMIN
        found = user_by_email(connection, email.upper())
        assert found is not None and found.role is Role.ADMIN
        assert set_role(connection, "nobody@example.org", Role.ADMIN) is None
        with pytest.raises(Exception, match="users_role_check"), connection.begin_nested():
            connection.execute(metadata.tables["users"].update().where(
                metadata.tables["users"].c.email == email.lower()).values(role="root"))
        assert connection.execute(select(func.count()).select_from(metadata.tables["users"])).scalar_one() > 0
