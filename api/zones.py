"""The time zone a user's days and times of day are read in.

In order: the request's `time_zone`; the user's profile as the stream worker stored it; the zone the worker last
counted their days in (users whose days were counted before profiles were stored); UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated
from zoneinfo import ZoneInfo, available_timezones

from fastapi import Depends, Query
from sqlalchemy import Connection

from api.access import SubjectDep
from api.deps import EngineDep
from api.errors import invalid
from storage.profiles import get_profile
from storage.queries import recorded_time_zone

DEFAULT_ZONE = "UTC"


@cache
def _zone_names() -> frozenset[str]:
    # Reading the zone database takes ~0.1 s; once per process is enough.
    return frozenset(available_timezones() | {DEFAULT_ZONE})


def check_zone(name: str, field: str = "query.time_zone") -> str:
    """An IANA zone name, or a 422 naming `field` (file paths such as '../x' are names ZoneInfo would open)."""
    if name not in _zone_names():
        raise invalid(field, "iana_time_zone", f"{name!r} is not an IANA time zone name (e.g. Europe/Berlin)")
    return name


def local_today(zone: str) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(zone)).date()


def _zone(subject: SubjectDep, engine: EngineDep,
          time_zone: Annotated[str | None, Query(max_length=64, description=(
              "IANA zone to read days and times of day in. Default: the user's profile's (GET /v1/me/profile), "
              "else the zone the stream worker last counted their days in, else UTC."))] = None) -> str:
    if time_zone is not None:
        return check_zone(time_zone)
    with engine.connect() as connection:
        return stored_zone(connection, subject.user_id) or DEFAULT_ZONE


def stored_zone(connection: Connection, user_id: str) -> str | None:
    """The user's zone as stored: their applied profile's, else the one their days were last counted in."""
    profile = get_profile(connection, user_id)
    if profile is not None:
        return profile.time_zone
    return recorded_time_zone(connection, user_id)


ZoneDep = Annotated[str, Depends(_zone)]
