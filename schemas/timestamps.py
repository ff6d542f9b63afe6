"""Timestamps every contract accepts: time-zone aware, with an offset some place on Earth uses, in a sane era.

Python allows offsets up to ±23:59 and years from 1; PostgreSQL's timestamptz rejects offsets beyond ±15:59, so an
event with "+20:00" would pass a plain AwareDatetime and then fail in the database, after Kafka has taken it.
Civil UTC offsets run from −12:00 (Baker Island) to +14:00 (Kiribati, Line Islands).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

MIN_UTC_OFFSET = timedelta(hours=-12)
MAX_UTC_OFFSET = timedelta(hours=14)
#: Nothing VitalStream records happened earlier (a lab result from a paper archive is still later than this).
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)


def check_timestamp(value: datetime) -> datetime:
    """The value, if its UTC offset is a civil one and it is not before 1900; a ValueError naming the rule otherwise."""
    offset = value.utcoffset()
    if offset is None:
        raise ValueError("must carry a time zone (e.g. 2024-05-01T08:30:00+02:00 or …Z)")
    if not MIN_UTC_OFFSET <= offset <= MAX_UTC_OFFSET:
        raise ValueError(f"UTC offset must be within -12:00 and +14:00 (civil time zones), got {value.isoformat()}")
    if value < EARLIEST:
        raise ValueError(f"must not be before {EARLIEST.date().isoformat()}, got {value.isoformat()}")
    return value


Timestamp = Annotated[AwareDatetime, AfterValidator(check_timestamp)]
"""An aware datetime with a civil UTC offset, from 1900 on."""
