"""Local calendar days as UTC bounds, across daylight-saving changes and date lines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from streams.days import day_bounds, local_day


def test_new_york_fall_back_day_lasts_25_hours() -> None:
    start, end = day_bounds(date(2024, 11, 3), "America/New_York")
    assert start == datetime(2024, 11, 3, 4, tzinfo=UTC)  # midnight EDT (UTC-4)
    assert end == datetime(2024, 11, 4, 5, tzinfo=UTC)  # midnight EST (UTC-5)
    assert end - start == timedelta(hours=25)


def test_new_york_spring_forward_day_lasts_23_hours() -> None:
    start, end = day_bounds(date(2024, 3, 10), "America/New_York")
    assert end - start == timedelta(hours=23)


def test_seoul_day_starts_at_15_utc_the_day_before() -> None:
    start, end = day_bounds(date(2024, 6, 2), "Asia/Seoul")
    assert (start, end) == (datetime(2024, 6, 1, 15, tzinfo=UTC), datetime(2024, 6, 2, 15, tzinfo=UTC))
    assert local_day(datetime(2024, 6, 1, 14, 59, tzinfo=UTC), "Asia/Seoul") == date(2024, 6, 1)
    assert local_day(datetime(2024, 6, 1, 15, 0, tzinfo=UTC), "Asia/Seoul") == date(2024, 6, 2)


def test_the_repeated_hour_belongs_to_the_day_it_happens_on() -> None:
    # 01:30 happens twice on 2024-11-03 in New York: 05:30Z (EDT) and 06:30Z (EST).
    for instant in (datetime(2024, 11, 3, 5, 30, tzinfo=UTC), datetime(2024, 11, 3, 6, 30, tzinfo=UTC)):
        assert local_day(instant, "America/New_York") == date(2024, 11, 3)


def test_consecutive_days_tile_time_without_gaps() -> None:
    day = date(2024, 10, 30)
    for _ in range(10):
        _, end = day_bounds(day, "America/New_York")
        day += timedelta(days=1)
        assert day_bounds(day, "America/New_York")[0] == end


def test_a_zone_that_skips_midnight_starts_the_day_when_the_clock_jumps() -> None:
    # America/Santiago moved clocks from 24:00 to 01:00 on 2024-09-08 (start of DST at local midnight).
    start, end = day_bounds(date(2024, 9, 8), "America/Santiago")
    assert start == datetime(2024, 9, 8, 4, tzinfo=UTC)
    assert end - start == timedelta(hours=23)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        local_day(datetime(2024, 1, 1), "UTC")
