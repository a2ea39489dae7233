"""Quiet windows in the recipient's zone: midnight crossings, DST days, half-hour shifts.

DST dates used (2026): New York springs forward 03-08 02:00→03:00 and falls back 11-01
02:00→01:00; Berlin 03-29 02:00→03:00 and 10-25 03:00→02:00; Lord Howe moves by half an
hour, falling back 04-05 02:00 (+11)→01:30 (+10:30) and springing forward 10-04 02:00
(+10:30)→02:30 (+11).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scheduler.preferences.decision import QuietHours
from scheduler.preferences.quiet_hours import is_quiet, quiet_window_end, wall_time_instant

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
NIGHT = QuietHours(time(22, 0), time(7, 0))


def z(text: str) -> datetime:
    """An instant written in UTC, e.g. ``z("2026-03-08T07:30")``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(zone: ZoneInfo, text: str, fold: int = 0) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone, fold=fold)


# --- plain days ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "end"),
    [
        ("2026-01-15T21:59:59", None),
        ("2026-01-15T22:00", "2026-01-16T07:00"),  # start is inclusive
        ("2026-01-15T23:30", "2026-01-16T07:00"),
        ("2026-01-16T00:00", "2026-01-16T07:00"),
        ("2026-01-16T03:00", "2026-01-16T07:00"),  # the window that began yesterday
        ("2026-01-16T06:59:59", "2026-01-16T07:00"),
        ("2026-01-16T07:00", None),  # end is exclusive: the end itself may send
        ("2026-01-16T12:00", None),
    ],
)
def test_a_window_crossing_midnight(at: str, end: str | None) -> None:
    result = quiet_window_end(NIGHT, BERLIN, local(BERLIN, at))
    expected = None if end is None else local(BERLIN, end).astimezone(UTC)
    assert result == expected
    assert result is None or result.tzinfo is UTC


@pytest.mark.parametrize(
    ("at", "end"),
    [
        ("2026-01-15T11:59", None),
        ("2026-01-15T12:00", "2026-01-15T14:00"),
        ("2026-01-15T13:59", "2026-01-15T14:00"),
        ("2026-01-15T14:00", None),
        ("2026-01-15T23:00", None),
    ],
)
def test_a_window_within_one_day(at: str, end: str | None) -> None:
    lunch = QuietHours(time(12, 0), time(14, 0))
    result = quiet_window_end(lunch, NEW_YORK, local(NEW_YORK, at))
    assert result == (None if end is None else local(NEW_YORK, end).astimezone(UTC))


def test_equal_start_and_end_is_no_window() -> None:
    never = QuietHours(time(9, 0), time(9, 0))
    assert never.is_empty
    for hour in range(24):
        assert quiet_window_end(never, BERLIN, local(BERLIN, f"2026-01-15T{hour:02}:00")) is None


def test_the_answer_does_not_depend_on_the_zone_at_is_written_in() -> None:
    at = local(BERLIN, "2026-01-15T23:30")
    for written in (at, at.astimezone(UTC), at.astimezone(ZoneInfo("Asia/Tokyo"))):
        assert quiet_window_end(NIGHT, BERLIN, written) == z("2026-01-16T06:00")


def test_is_quiet() -> None:
    assert is_quiet(NIGHT, BERLIN, z("2026-01-15T22:30"))
    assert not is_quiet(NIGHT, BERLIN, z("2026-01-15T12:00"))


def test_a_naive_instant_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        quiet_window_end(NIGHT, BERLIN, datetime(2026, 1, 15, 23, 0))


def test_quiet_hours_take_wall_times_only() -> None:
    with pytest.raises(ValueError, match="naive"):
        QuietHours(time(22, 0, tzinfo=UTC), time(7, 0))
    assert str(NIGHT) == "22:00–07:00"


# --- DST: an end in the spring gap reads with the pre-gap offset ----------------------


def test_wall_time_instant_follows_rfc_5545() -> None:
    # Spring gap: 02:30 does not exist in New York; the pre-gap offset (-05:00) gives 07:30Z.
    assert wall_time_instant(date(2026, 3, 8), time(2, 30), NEW_YORK) == z("2026-03-08T07:30")
    # Fall back: 01:30 happens twice; the first (EDT, -04:00) is 05:30Z.
    assert wall_time_instant(date(2026, 11, 1), time(1, 30), NEW_YORK) == z("2026-11-01T05:30")


@pytest.mark.parametrize(
    ("at", "end"),
    [
        ("2026-03-08T06:00", "2026-03-08T07:30"),  # 01:00 EST
        ("2026-03-08T07:10", "2026-03-08T07:30"),  # 03:10 EDT: still before the read end
        ("2026-03-08T07:30", None),  # 03:30 EDT, the pre-gap reading of 02:30
    ],
)
def test_new_york_spring_end_in_the_gap(at: str, end: str | None) -> None:
    window = QuietHours(time(22, 0), time(2, 30))
    assert quiet_window_end(window, NEW_YORK, z(at)) == (None if end is None else z(end))


def test_new_york_spring_day_is_an_hour_shorter() -> None:
    # 22:00 EST on 03-07 to 07:00 EDT on 03-08 lasts 8 hours, not 9.
    assert quiet_window_end(NIGHT, NEW_YORK, z("2026-03-08T03:00")) == z("2026-03-08T11:00")
    assert quiet_window_end(NIGHT, NEW_YORK, z("2026-03-08T10:59")) == z("2026-03-08T11:00")
    assert quiet_window_end(NIGHT, NEW_YORK, z("2026-03-08T11:00")) is None


@pytest.mark.parametrize(
    ("at", "end"),
    [
        ("2026-03-28T23:30", "2026-03-29T01:30"),  # 00:30 CET
        ("2026-03-29T01:20", "2026-03-29T01:30"),  # 03:20 CEST
        ("2026-03-29T01:30", None),  # 03:30 CEST: the pre-gap reading of 02:30
    ],
)
def test_berlin_spring_end_in_the_gap(at: str, end: str | None) -> None:
    window = QuietHours(time(23, 0), time(2, 30))
    assert quiet_window_end(window, BERLIN, z(at)) == (None if end is None else z(end))


def test_berlin_spring_start_in_the_gap() -> None:
    window = QuietHours(time(2, 15), time(6, 0))  # 02:15 is read as 03:15 CEST (01:15Z)
    assert quiet_window_end(window, BERLIN, z("2026-03-29T01:00")) is None  # 03:00 CEST
    assert quiet_window_end(window, BERLIN, z("2026-03-29T01:15")) == z("2026-03-29T04:00")


def test_a_window_inside_the_gap_moves_with_the_gap() -> None:
    # 02:10–02:40 does not exist on Berlin's spring day: both ends read with the pre-gap
    # offset, 01:10Z–01:40Z (03:10–03:40 CEST). The day before it is the same half hour.
    window = QuietHours(time(2, 10), time(2, 40))
    assert quiet_window_end(window, BERLIN, z("2026-03-29T01:20")) == z("2026-03-29T01:40")
    assert quiet_window_end(window, BERLIN, z("2026-03-28T01:20")) == z("2026-03-28T01:40")
    assert quiet_window_end(window, BERLIN, z("2026-03-29T01:05")) is None


def test_a_same_day_window_reversed_by_the_gap_is_empty() -> None:
    # 02:30–03:00 on New York's spring day reads as 07:30Z–07:00Z: no quiet time at all.
    window = QuietHours(time(2, 30), time(3, 0))
    for minute in range(0, 60, 5):
        assert quiet_window_end(window, NEW_YORK, z(f"2026-03-08T07:{minute:02}")) is None


# --- DST: a repeated wall time means its first occurrence ------------------------------


@pytest.mark.parametrize(
    ("at", "end"),
    [
        ("2026-11-01T05:15", "2026-11-01T05:30"),  # 01:15 EDT, first pass
        ("2026-11-01T05:45", None),  # 01:45 EDT: after the first 01:30
        ("2026-11-01T06:15", None),  # 01:15 EST, second pass: the window already ended
    ],
)
def test_new_york_fall_end_in_the_repeated_hour(at: str, end: str | None) -> None:
    window = QuietHours(time(22, 0), time(1, 30))
    assert quiet_window_end(window, NEW_YORK, z(at)) == (None if end is None else z(end))


def test_new_york_fall_start_in_the_repeated_hour() -> None:
    window = QuietHours(time(1, 30), time(6, 0))  # starts at the first 01:30 (05:30Z)
    assert quiet_window_end(window, NEW_YORK, z("2026-11-01T05:15")) is None
    assert quiet_window_end(window, NEW_YORK, z("2026-11-01T05:30")) == z("2026-11-01T11:00")
    second_pass = local(NEW_YORK, "2026-11-01T01:15", fold=1)  # 06:15Z
    assert quiet_window_end(window, NEW_YORK, second_pass) == z("2026-11-01T11:00")


def test_new_york_fall_night_is_an_hour_longer() -> None:
    # 22:00 EDT on 10-31 (02:00Z) to 07:00 EST on 11-01 (12:00Z): 10 hours.
    assert quiet_window_end(NIGHT, NEW_YORK, z("2026-11-01T02:00")) == z("2026-11-01T12:00")
    assert quiet_window_end(NIGHT, NEW_YORK, z("2026-11-01T11:59")) == z("2026-11-01T12:00")


@pytest.mark.parametrize(
    ("at", "end"),
    [
        ("2026-10-24T22:00", "2026-10-25T00:30"),  # 00:00 CEST
        ("2026-10-25T00:40", None),  # 02:40 CEST, after the first 02:30
        ("2026-10-25T01:10", None),  # 02:10 CET, the second pass
    ],
)
def test_berlin_fall_end_in_the_repeated_hour(at: str, end: str | None) -> None:
    window = QuietHours(time(22, 0), time(2, 30))
    assert quiet_window_end(window, BERLIN, z(at)) == (None if end is None else z(end))


def test_overlapping_windows_on_a_spring_day_defer_past_both() -> None:
    # 03:00–02:30 in New York: on 03-08 the end 02:30 reads as 07:30Z (pre-gap offset)
    # while that day's start 03:00 EDT is 07:00Z, so two windows overlap for half an
    # hour. An instant in the overlap must wait for the later window, not the earlier;
    # one before it would end at 07:30Z, inside the next window, so it chains on too.
    window = QuietHours(time(3, 0), time(2, 30))
    assert quiet_window_end(window, NEW_YORK, z("2026-03-08T06:50")) == z("2026-03-09T06:30")
    assert quiet_window_end(window, NEW_YORK, z("2026-03-08T07:10")) == z("2026-03-09T06:30")
    assert quiet_window_end(window, NEW_YORK, z("2026-03-08T07:30")) == z("2026-03-09T06:30")
    assert quiet_window_end(window, NEW_YORK, z("2026-03-09T06:45")) is None


# --- Lord Howe: a half-hour DST shift ----------------------------------------------------


def test_lord_howe_spring_end_in_the_half_hour_gap() -> None:
    window = QuietHours(time(22, 0), time(2, 15))  # 02:15 on 10-04 does not exist
    # Read with the pre-gap offset +10:30: 15:45Z, which the clock shows as 02:45 +11.
    assert quiet_window_end(window, LORD_HOWE, z("2026-10-03T15:00")) == z("2026-10-03T15:45")
    assert quiet_window_end(window, LORD_HOWE, z("2026-10-03T15:40")) == z("2026-10-03T15:45")
    assert quiet_window_end(window, LORD_HOWE, z("2026-10-03T15:45")) is None


def test_lord_howe_fall_end_in_the_repeated_half_hour() -> None:
    window = QuietHours(time(22, 0), time(1, 45))  # 01:45 on 04-05 happens twice
    assert quiet_window_end(window, LORD_HOWE, z("2026-04-04T14:30")) == z("2026-04-04T14:45")
    # 01:40 +10:30 (15:10Z) is the second pass: the window ended at the first 01:45.
    assert quiet_window_end(window, LORD_HOWE, z("2026-04-04T15:10")) is None


# --- properties --------------------------------------------------------------------------

ZONES = st.sampled_from(
    [
        "UTC",
        "America/New_York",
        "Europe/Berlin",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
        "America/Santiago",
        "Pacific/Chatham",
    ]
)
WALL_TIMES = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
INSTANTS = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)


@settings(max_examples=200, deadline=None)
@given(zone_name=ZONES, start=WALL_TIMES, end=WALL_TIMES, at=INSTANTS)
def test_the_end_is_later_and_outside_quiet_hours(
    zone_name: str, start: time, end: time, at: datetime
) -> None:
    quiet, zone = QuietHours(start, end), ZoneInfo(zone_name)
    result = quiet_window_end(quiet, zone, at)
    if result is not None:
        assert result > at
        assert result - at <= timedelta(hours=25)
        assert quiet_window_end(quiet, zone, result) is None


@settings(max_examples=200, deadline=None)
@given(zone_name=ZONES, start=WALL_TIMES, end=WALL_TIMES, at=INSTANTS)
def test_away_from_dst_changes_it_is_wall_clock_arithmetic(
    zone_name: str, start: time, end: time, at: datetime
) -> None:
    zone = ZoneInfo(zone_name)
    offsets = {(at + timedelta(hours=h)).astimezone(zone).utcoffset() for h in range(-30, 31)}
    assume(len(offsets) == 1)
    wall = at.astimezone(zone)
    now = wall.time().replace(tzinfo=None)
    if start < end:
        inside, end_day = start <= now < end, wall.date()
    else:
        inside = now >= start or now < end
        end_day = wall.date() + timedelta(days=1 if now >= start else 0)
    expected = (
        datetime.combine(end_day, end, tzinfo=zone).astimezone(UTC)
        if inside and start != end
        else None
    )
    assert quiet_window_end(QuietHours(start, end), zone, at) == expected
