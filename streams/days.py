"""Calendar days in a user's own time zone, as UTC instants: a day is [local midnight, next local midnight).

Days are 23, 24 or 25 hours long around daylight-saving changes. Local midnight is the FIRST instant the
wall clock shows 00:00 (fold=0); where midnight itself is skipped (a few zones change clocks at 00:00), the
day starts when the clock jumps, which is what fold=0 of the skipped time gives.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo


@cache
def zone(name: str) -> ZoneInfo:
    """ZoneInfo by IANA name (cached; ZoneInfo itself caches too, this skips its key check)."""
    return ZoneInfo(name)


def local_day(at: datetime, time_zone: str) -> date:
    """The calendar date `at` falls on in `time_zone`. `at` must be time-zone aware."""
    if at.tzinfo is None:
        raise ValueError(f"at: naive datetime {at.isoformat()}; give a time-zone aware one")
    return at.astimezone(zone(time_zone)).date()


def day_bounds(day: date, time_zone: str) -> tuple[datetime, datetime]:
    """[start, end) of `day` in `time_zone`, both in UTC."""
    tz = zone(time_zone)
    start = datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    return start, end
