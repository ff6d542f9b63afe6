"""Queries for accounts: users, refresh tokens, device keys, clinician grants, Nightscout secrets, idempotency.

Every function takes a Connection and leaves the transaction to the caller, so a route can put several in one.
Secrets arrive here already hashed; nothing in this module sees a password, a key or a token.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Connection, and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from storage.tables import (
    accepted_events,
    clinician_grants,
    device_keys,
    idempotency_keys,
    nightscout_secrets,
    refresh_tokens,
    users,
)


class Role(StrEnum):
    USER = "user"
    CLINICIAN = "clinician"
    ADMIN = "admin"


class DuplicateEmailError(ValueError):
    """An account with this e-mail address exists already."""


@dataclass(frozen=True)
class User:
    id: str
    email: str
    password_hash: str
    role: Role
    created_at: datetime


@dataclass(frozen=True)
class DeviceKey:
    id: str
    user_id: str
    name: str
    kind: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class Grant:
    clinician_id: str
    clinician_email: str
    granted_at: datetime


@dataclass(frozen=True)
class StoredResponse:
    """What an Idempotency-Key stands for: the request's hash and, once finished, the response given."""

    request_sha256: str
    status_code: int | None
    response: Any


def normalise_email(email: str) -> str:
    # Addresses are compared case-insensitively: one person, one account, however they type it.
    return email.strip().lower()


def _user(row: Any) -> User:
    return User(id=row.id, email=row.email, password_hash=row.password_hash, role=Role(row.role),
                created_at=row.created_at)


# -- users -----------------------------------------------------------------------------------------------------------
def create_user(connection: Connection, email: str, password_hash: str, role: Role, now: datetime) -> User:
    """Insert a user; raises DuplicateEmailError when the address is taken."""
    statement = (insert(users).values(id=str(uuid4()), email=normalise_email(email), password_hash=password_hash,
                                      role=role.value, created_at=now)
                 .on_conflict_do_nothing(index_elements=["email"]).returning(*users.c))
    row = connection.execute(statement).first()
    if row is None:
        raise DuplicateEmailError(email)
    return _user(row)


def user_by_email(connection: Connection, email: str) -> User | None:
    row = connection.execute(select(users).where(users.c.email == normalise_email(email))).first()
    return None if row is None else _user(row)


def user_by_id(connection: Connection, user_id: str) -> User | None:
    row = connection.execute(select(users).where(users.c.id == user_id)).first()
    return None if row is None else _user(row)


def set_role(connection: Connection, email: str, role: Role) -> User | None:
    """Change a user's role; None when there is no such user."""
    row = connection.execute(update(users).where(users.c.email == normalise_email(email))
                             .values(role=role.value).returning(*users.c)).first()
    return None if row is None else _user(row)


def set_password_hash(connection: Connection, user_id: str, password_hash: str) -> None:
    """Replace a stored hash (argon2 parameters change over time; the hash is upgraded on the next login)."""
    connection.execute(update(users).where(users.c.id == user_id).values(password_hash=password_hash))


# -- refresh tokens --------------------------------------------------------------------------------------------------
def store_refresh_token(connection: Connection, jti: UUID, user_id: str, issued_at: datetime,
                        expires_at: datetime) -> None:
    connection.execute(refresh_tokens.insert().values(jti=jti, user_id=user_id, issued_at=issued_at,
                                                      expires_at=expires_at))


def use_refresh_token(connection: Connection, jti: UUID, user_id: str, now: datetime) -> bool:
    """Mark a refresh token used. False when it is unknown, expired, revoked or used already.

    A second use of the same token means it was copied: every refresh token of that user is revoked, so
    whoever holds a copy (the thief or the owner) has to sign in again.
    """
    used = connection.execute(
        update(refresh_tokens)
        .where(refresh_tokens.c.jti == jti, refresh_tokens.c.user_id == user_id, refresh_tokens.c.used_at.is_(None),
               refresh_tokens.c.revoked_at.is_(None), refresh_tokens.c.expires_at > now)
        .values(used_at=now).returning(refresh_tokens.c.jti)
    ).first()
    if used is not None:
        return True
    replayed = connection.execute(select(refresh_tokens.c.jti).where(
        refresh_tokens.c.jti == jti, refresh_tokens.c.user_id == user_id, refresh_tokens.c.used_at.is_not(None),
    )).first()
    if replayed is not None:
        revoke_refresh_tokens(connection, user_id, now)
    return False


def revoke_refresh_tokens(connection: Connection, user_id: str, now: datetime) -> int:
    result = connection.execute(update(refresh_tokens)
                                .where(refresh_tokens.c.user_id == user_id, refresh_tokens.c.revoked_at.is_(None))
                                .values(revoked_at=now))
    return result.rowcount


# -- device keys -----------------------------------------------------------------------------------------------------
def _device(row: Any) -> DeviceKey:
    return DeviceKey(id=row.id, user_id=row.user_id, name=row.name, kind=row.kind, created_at=row.created_at,
                     revoked_at=row.revoked_at)


def create_device_key(connection: Connection, user_id: str, name: str, kind: str, key_sha256: str,
                      now: datetime) -> DeviceKey:
    row = connection.execute(device_keys.insert().values(
        id=str(uuid4()), user_id=user_id, name=name, kind=kind, key_sha256=key_sha256, created_at=now,
    ).returning(*device_keys.c)).one()
    return _device(row)


def list_device_keys(connection: Connection, user_id: str, include_revoked: bool = False) -> list[DeviceKey]:
    query = select(device_keys).where(device_keys.c.user_id == user_id)
    if not include_revoked:
        query = query.where(device_keys.c.revoked_at.is_(None))
    return [_device(row) for row in connection.execute(query.order_by(device_keys.c.created_at))]


def revoke_device_key(connection: Connection, user_id: str, device_id: str, now: datetime) -> bool:
    """Revoke one of the user's keys; False when the user has no such active key (another user's counts as none)."""
    result = connection.execute(update(device_keys)
                                .where(device_keys.c.id == device_id, device_keys.c.user_id == user_id,
                                       device_keys.c.revoked_at.is_(None))
                                .values(revoked_at=now))
    return result.rowcount == 1


def device_by_key_hash(connection: Connection, key_sha256: str) -> tuple[DeviceKey, Role] | None:
    """The active device key with this hash and its owner's role."""
    row = connection.execute(
        select(device_keys, users.c.role).join(users, users.c.id == device_keys.c.user_id)
        .where(device_keys.c.key_sha256 == key_sha256, device_keys.c.revoked_at.is_(None))
    ).first()
    return None if row is None else (_device(row), Role(row.role))


# -- clinician grants ------------------------------------------------------------------------------------------------
def add_grant(connection: Connection, user_id: str, clinician_id: str, now: datetime) -> datetime:
    """Let a clinician see the user's data; granting twice keeps the first time. Returns when it was granted."""
    connection.execute(insert(clinician_grants).values(user_id=user_id, clinician_id=clinician_id, granted_at=now)
                       .on_conflict_do_nothing(index_elements=["user_id", "clinician_id"]))
    granted_at: datetime = connection.execute(
        select(clinician_grants.c.granted_at)
        .where(clinician_grants.c.user_id == user_id, clinician_grants.c.clinician_id == clinician_id)).scalar_one()
    return granted_at


def remove_grant(connection: Connection, user_id: str, clinician_id: str) -> bool:
    result = connection.execute(delete(clinician_grants).where(clinician_grants.c.user_id == user_id,
                                                               clinician_grants.c.clinician_id == clinician_id))
    return result.rowcount == 1


def list_grants(connection: Connection, user_id: str) -> list[Grant]:
    rows = connection.execute(
        select(clinician_grants.c.clinician_id, users.c.email, clinician_grants.c.granted_at)
        .join(users, users.c.id == clinician_grants.c.clinician_id)
        .where(clinician_grants.c.user_id == user_id).order_by(clinician_grants.c.granted_at))
    return [Grant(clinician_id=r.clinician_id, clinician_email=r.email, granted_at=r.granted_at) for r in rows]


def has_grant(connection: Connection, user_id: str, clinician_id: str) -> bool:
    return connection.execute(select(func.count()).select_from(clinician_grants).where(
        clinician_grants.c.user_id == user_id, clinician_grants.c.clinician_id == clinician_id)).scalar_one() > 0


# -- Nightscout secrets ----------------------------------------------------------------------------------------------
def set_nightscout_secret(connection: Connection, user_id: str, sha1_sha256: str, now: datetime) -> None:
    """Store (or replace: the old secret stops working) the user's Nightscout secret hash."""
    statement = insert(nightscout_secrets).values(user_id=user_id, sha1_sha256=sha1_sha256, created_at=now)
    connection.execute(statement.on_conflict_do_update(
        index_elements=["user_id"], set_={"sha1_sha256": statement.excluded.sha1_sha256,
                                          "created_at": statement.excluded.created_at}))


def user_by_nightscout_hash(connection: Connection, sha1_sha256: str) -> User | None:
    row = connection.execute(select(users).join(nightscout_secrets, nightscout_secrets.c.user_id == users.c.id)
                             .where(nightscout_secrets.c.sha1_sha256 == sha1_sha256)).first()
    return None if row is None else _user(row)


# -- idempotency -----------------------------------------------------------------------------------------------------
# Both claims below insert rows inside the caller's transaction and keep it open while the events are published.
# A concurrent request for the same key or event id then waits on the row lock: if the first commits, it sees a
# duplicate; if the first rolls back (Kafka failed), its insert goes through and it publishes instead.

def claim_idempotency_key(connection: Connection, user_id: str, key: str, request_sha256: str, now: datetime,
                          expires_at: datetime) -> StoredResponse | None:
    """Claim `key` for this request: None when claimed (go ahead), else what the earlier request stored."""
    statement = insert(idempotency_keys).values(user_id=user_id, key=key, request_sha256=request_sha256,
                                                created_at=now, expires_at=expires_at)
    # An expired key is free again: take it over.
    claimed = connection.execute(statement.on_conflict_do_update(
        index_elements=["user_id", "key"],
        set_={"request_sha256": statement.excluded.request_sha256, "status_code": None, "response": None,
              "created_at": statement.excluded.created_at, "expires_at": statement.excluded.expires_at},
        where=idempotency_keys.c.expires_at <= now,
    ).returning(idempotency_keys.c.key)).first()
    if claimed is not None:
        return None
    row = connection.execute(select(idempotency_keys.c.request_sha256, idempotency_keys.c.status_code,
                                    idempotency_keys.c.response)
                             .where(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)).one()
    return StoredResponse(request_sha256=row.request_sha256, status_code=row.status_code, response=row.response)


def save_idempotent_response(connection: Connection, user_id: str, key: str, status_code: int,
                             response: Any) -> None:
    connection.execute(update(idempotency_keys)
                       .where(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
                       .values(status_code=status_code, response=response))


def claim_event_ids(connection: Connection, user_id: str, event_ids: Iterable[UUID], now: datetime,
                    expires_at: datetime) -> set[UUID]:
    """Record event ids as accepted; returns those that were new (or whose record had expired)."""
    # Sorted, so two requests sharing ids take their row locks in the same order (no deadlock).
    rows = [{"user_id": user_id, "event_id": event_id, "accepted_at": now, "expires_at": expires_at}
            for event_id in sorted(set(event_ids))]
    if not rows:
        return set()
    statement = insert(accepted_events).values(rows)
    result = connection.execute(statement.on_conflict_do_update(
        index_elements=["user_id", "event_id"],
        set_={"accepted_at": statement.excluded.accepted_at, "expires_at": statement.excluded.expires_at},
        where=accepted_events.c.expires_at <= now,
    ).returning(accepted_events.c.event_id))
    return {row.event_id for row in result}


def purge_expired(connection: Connection, now: datetime) -> int:
    """Delete expired idempotency keys and event-id records; returns how many rows went."""
    removed = 0
    for table in (idempotency_keys, accepted_events):
        removed += connection.execute(delete(table).where(and_(table.c.expires_at <= now))).rowcount
    return removed
