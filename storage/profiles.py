"""Each user's profile (time zone, BP guideline) as the stream worker last applied it; the API reads it.

The profile topic (compacted) is the source of truth; this table is its materialised view, written only by the
stream worker, so the API learns a profile the same way it learns every other result: from storage.
A row carries the profile's updated_at, and an older profile never replaces a newer one (a replay after a
rebalance re-applies old messages).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Connection, String, Table, Text, delete, select
from sqlalchemy.dialects.postgresql import insert

from schemas.derived import BpGuideline, UserProfile
from storage.tables import TS, metadata

user_profiles = Table(
    "user_profiles", metadata,
    Column("user_id", Text, primary_key=True),
    Column("time_zone", Text, nullable=False),
    Column("bp_guideline", String(16)),
    Column("updated_at", TS, nullable=False),
)


@dataclass(frozen=True, slots=True)
class StoredProfile:
    user_id: str
    time_zone: str
    #: None: the deployment's default guideline applies.
    bp_guideline: BpGuideline | None
    updated_at: datetime


def upsert_profiles(connection: Connection, profiles: Sequence[UserProfile]) -> None:
    """Store each user's newest profile; one older than the stored one changes nothing."""
    newest: dict[str, UserProfile] = {}
    for profile in profiles:
        kept = newest.get(profile.user_id)
        if kept is None or profile.updated_at >= kept.updated_at:
            newest[profile.user_id] = profile
    if not newest:
        return
    statement = insert(user_profiles).values([
        {"user_id": p.user_id, "time_zone": p.time_zone,
         "bp_guideline": p.bp_guideline.value if p.bp_guideline is not None else None, "updated_at": p.updated_at}
        for p in newest.values()])
    connection.execute(statement.on_conflict_do_update(
        index_elements=["user_id"],
        set_={name: statement.excluded[name] for name in ("time_zone", "bp_guideline", "updated_at")},
        where=statement.excluded.updated_at >= user_profiles.c.updated_at))


def delete_profiles(connection: Connection, user_ids: Sequence[str]) -> None:
    """Forget the profiles of these users (a tombstone on the profile topic)."""
    if user_ids:
        connection.execute(delete(user_profiles).where(user_profiles.c.user_id.in_(list(user_ids))))


def get_profile(connection: Connection, user_id: str) -> StoredProfile | None:
    """The user's stored profile; None when the worker has applied none (UTC and the default guideline apply)."""
    row = connection.execute(select(user_profiles).where(user_profiles.c.user_id == user_id)).first()
    if row is None:
        return None
    guideline = BpGuideline(row.bp_guideline) if row.bp_guideline is not None else None
    return StoredProfile(user_id=row.user_id, time_zone=row.time_zone, bp_guideline=guideline,
                         updated_at=row.updated_at)
