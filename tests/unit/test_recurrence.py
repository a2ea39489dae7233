"""Recurrence semantics (DESIGN §5): RFC 5545 §3.3.5 across DST, COUNT/UNTIL, catch-up, cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from scheduler.errors import InvalidInput
from scheduler.rules import recurrence
from scheduler.rules.recurrence import (
    CompiledRule,
    Planned,
    RecurrenceState,
    catch_up,
    due_between,
    next_fire_at,
    parse_offset,
    preview,
)
from scheduler.rules.schedules import Schedule, parse_schedule
from scheduler.rules.timezones import local_to_utc

NEW_YORK = ZoneInfo("America/New_York")
BERLIN = ZoneInfo("Europe/Berlin")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
KOLKATA = ZoneInfo("Asia/Kolkata")
APIA = ZoneInfo("Pacific/Apia")


def z(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def recurring(rule: str, start: str, zone: ZoneInfo | None = None) -> Schedule:
    data: dict[str, Any] = {"kind": "recurring", "rrule": rule, "start": start}
    if zone is not None:
        data["timezone"] = zone.key
    return parse_schedule(data)


def walls(instants: list[datetime], zone: ZoneInfo) -> list[str]:
    return [instant.astimezone(zone).strftime("%m-%d %H:%M") for instant in instants]


def fire_all(
    schedule: Schedule, zone: ZoneInfo, after: datetime, limit: int = 100
) -> list[Planned]:
    """Fire one occurrence at a time, storing the state each time, as the fire stage does."""
    fired: list[Planned] = []
    state = None
    while len(fired) < limit:
        planned = next_fire_at(schedule, zone=zone, after=after, state=state)
        if planned is None:
            break
        fired.append(planned)
        after, state = planned.fire_at, planned.state
    return fired


# --- RFC 5545 §3.3.5: gaps and folds -----------------------------------------------------

# zone, wall time, its instant, the wall time a clock shows at that instant
GAPS_AND_FOLDS = [
    pytest.param(NEW_YORK, datetime(2026, 3, 8, 2, 30), z(2026, 3, 8, 7, 30), "03:30", id="NY-gap"),
    pytest.param(
        NEW_YORK, datetime(2026, 11, 1, 1, 30), z(2026, 11, 1, 5, 30), "01:30", id="NY-fold"
    ),
    pytest.param(
        BERLIN, datetime(2026, 3, 29, 2, 30), z(2026, 3, 29, 1, 30), "03:30", id="Berlin-gap"
    ),
    pytest.param(
        BERLIN, datetime(2026, 10, 25, 2, 30), z(2026, 10, 25, 0, 30), "02:30", id="Berlin-fold"
    ),
    pytest.param(
        LORD_HOWE, datetime(2026, 10, 4, 2, 15), z(2026, 10, 3, 15, 45), "02:45", id="LordHowe-gap"
    ),
    pytest.param(
        LORD_HOWE, datetime(2026, 4, 5, 1, 45), z(2026, 4, 4, 14, 45), "01:45", id="LordHowe-fold"
    ),
    pytest.param(KOLKATA, datetime(2026, 3, 8, 9, 0), z(2026, 3, 8, 3, 30), "09:00", id="Kolkata"),
    pytest.param(
        APIA, datetime(2011, 12, 30, 9, 0), z(2011, 12, 30, 19, 0), "09:00", id="Apia-skipped-day"
    ),
]


@pytest.mark.parametrize(("zone", "wall", "instant", "shown"), GAPS_AND_FOLDS)
def test_local_to_utc_follows_rfc5545(
    zone: ZoneInfo, wall: datetime, instant: datetime, shown: str
) -> None:
    result = local_to_utc(wall, zone)

    assert result == instant
    assert result.tzinfo is UTC
    assert result.astimezone(zone).strftime("%H:%M") == shown


@pytest.mark.parametrize(
    ("zone", "wall", "repeat"),
    [
        (NEW_YORK, datetime(2026, 11, 1, 1, 30), timedelta(hours=1)),
        (BERLIN, datetime(2026, 10, 25, 2, 30), timedelta(hours=1)),
        (LORD_HOWE, datetime(2026, 4, 5, 1, 45), timedelta(minutes=30)),
    ],
)
def test_a_repeated_wall_time_means_its_first_occurrence(
    zone: ZoneInfo, wall: datetime, repeat: timedelta
) -> None:
    second = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)

    assert local_to_utc(wall, zone) == second - repeat


def test_apia_skipped_day_fires_on_the_next_day_at_the_same_wall_time() -> None:
    assert local_to_utc(datetime(2011, 12, 30, 9), APIA).astimezone(APIA) == datetime(
        2011, 12, 31, 9, tzinfo=APIA
    )


def test_local_to_utc_refuses_an_aware_datetime() -> None:
    with pytest.raises(ValueError, match="naive"):
        local_to_utc(z(2026, 1, 1), BERLIN)


@pytest.mark.parametrize(("zone", "wall", "instant", "shown"), GAPS_AND_FOLDS)
def test_once_local_fires_at_the_rfc5545_instant(
    zone: ZoneInfo, wall: datetime, instant: datetime, shown: str
) -> None:
    schedule = parse_schedule({"kind": "once", "local": wall.isoformat(), "timezone": zone.key})

    planned = next_fire_at(schedule, zone=NEW_YORK, after=instant - timedelta(days=1))

    assert planned is not None
    assert planned.fire_at == instant
    assert next_fire_at(schedule, zone=NEW_YORK, after=instant) is None  # strictly after


@pytest.mark.parametrize(
    ("zone", "start", "expected"),
    [
        pytest.param(
            NEW_YORK,
            "2026-03-07T02:30",
            [z(2026, 3, 7, 7, 30), z(2026, 3, 8, 7, 30), z(2026, 3, 9, 6, 30)],
            id="NY-gap",
        ),
        pytest.param(
            NEW_YORK,
            "2026-10-31T01:30",
            [z(2026, 10, 31, 5, 30), z(2026, 11, 1, 5, 30), z(2026, 11, 2, 6, 30)],
            id="NY-fold",
        ),
        pytest.param(
            BERLIN,
            "2026-03-28T02:30",
            [z(2026, 3, 28, 1, 30), z(2026, 3, 29, 1, 30), z(2026, 3, 30, 0, 30)],
            id="Berlin-gap",
        ),
        pytest.param(
            BERLIN,
            "2026-10-24T02:30",
            [z(2026, 10, 24, 0, 30), z(2026, 10, 25, 0, 30), z(2026, 10, 26, 1, 30)],
            id="Berlin-fold",
        ),
        pytest.param(
            LORD_HOWE,
            "2026-10-03T02:15",
            [z(2026, 10, 2, 15, 45), z(2026, 10, 3, 15, 45), z(2026, 10, 4, 15, 15)],
            id="LordHowe-gap",
        ),
        pytest.param(
            LORD_HOWE,
            "2026-04-04T01:45",
            [z(2026, 4, 3, 14, 45), z(2026, 4, 4, 14, 45), z(2026, 4, 5, 15, 15)],
            id="LordHowe-fold",
        ),
        pytest.param(
            KOLKATA,
            "2026-03-07T09:00",
            [z(2026, 3, 7, 3, 30), z(2026, 3, 8, 3, 30), z(2026, 3, 9, 3, 30)],
            id="Kolkata",
        ),
        # 12-30 does not exist: its 09:00 is 12-31 09:00, and 12-31's own 09:00 is the same
        # instant, so it fires once.
        pytest.param(
            APIA,
            "2011-12-29T09:00",
            [z(2011, 12, 29, 19), z(2011, 12, 30, 19), z(2011, 12, 31, 19)],
            id="Apia-skipped-day",
        ),
    ],
)
def test_daily_rule_across_a_transition(
    zone: ZoneInfo, start: str, expected: list[datetime]
) -> None:
    schedule = recurring("FREQ=DAILY", start, zone)
    after = expected[0] - timedelta(hours=1)

    assert preview(schedule, zone=NEW_YORK, after=after, count=3) == expected
    assert [planned.fire_at for planned in fire_all(schedule, NEW_YORK, after, limit=3)] == expected


def test_apia_daily_reminder_shows_each_remaining_day_once() -> None:
    schedule = recurring("FREQ=DAILY", "2011-12-28T09:00", APIA)

    instants = preview(schedule, zone=APIA, after=z(2011, 12, 27), count=4)

    assert walls(instants, APIA) == ["12-28 09:00", "12-29 09:00", "12-31 09:00", "01-01 09:00"]


@pytest.mark.parametrize("zone", [NEW_YORK, BERLIN, LORD_HOWE, KOLKATA])
def test_nine_local_stays_nine_local_all_year(zone: ZoneInfo) -> None:
    schedule = recurring("FREQ=WEEKLY;BYDAY=MO", "2026-01-05T09:00", zone)

    instants = preview(schedule, zone=zone, after=z(2026, 1, 1), count=52)

    assert {instant.astimezone(zone).strftime("%a %H:%M") for instant in instants} == {"Mon 09:00"}
    utc_times = {instant.time() for instant in instants}
    assert len(utc_times) == (1 if zone is KOLKATA else 2)


def test_hourly_across_spring_forward_gives_distinct_hourly_instants() -> None:
    schedule = recurring("FREQ=HOURLY", "2026-03-08T00:00", NEW_YORK)

    instants = preview(schedule, zone=NEW_YORK, after=z(2026, 3, 8, 4), count=5)

    # 02:00 does not exist and reads as 03:00 EDT, which 03:00 also is: one instant.
    assert instants == [z(2026, 3, 8, hour) for hour in (5, 6, 7, 8, 9)]
    assert walls(instants, NEW_YORK) == [
        "03-08 00:00",
        "03-08 01:00",
        "03-08 03:00",
        "03-08 04:00",
        "03-08 05:00",
    ]


def test_hourly_across_fall_back_skips_the_repeated_hour() -> None:
    # rrule runs on the wall clock, where 01:00 happens once; the repeated hour's
    # 01:00 EST (06:00Z) is not an occurrence (dateutil #1351, by design).
    schedule = recurring("FREQ=HOURLY", "2026-11-01T00:00", NEW_YORK)

    instants = preview(schedule, zone=NEW_YORK, after=z(2026, 11, 1, 3), count=4)

    assert instants == [z(2026, 11, 1, 4), z(2026, 11, 1, 5), z(2026, 11, 1, 7), z(2026, 11, 1, 8)]


def test_a_gap_shifted_time_that_overtakes_a_real_one_keeps_the_order() -> None:
    # Lord Howe's gap is 30 minutes: 02:15 reads as 02:45 (15:45Z) and comes before the
    # real 02:40 (15:40Z) on the wall clock. Instants never go backwards, so 02:40 drops.
    schedule = recurring("FREQ=HOURLY;BYMINUTE=15,40", "2026-10-04T01:00", LORD_HOWE)

    instants = preview(schedule, zone=LORD_HOWE, after=z(2026, 10, 3, 14), count=5)

    assert instants == [
        z(2026, 10, 3, 14, 45),
        z(2026, 10, 3, 15, 10),
        z(2026, 10, 3, 15, 45),
        z(2026, 10, 3, 16, 15),
        z(2026, 10, 3, 16, 40),
    ]


# --- COUNT, UNTIL and the re-anchoring traps ---------------------------------------------


def test_count_survives_re_anchoring() -> None:
    # Trap 1: re-anchored without the remaining count, COUNT=10 would start over.
    schedule = recurring("FREQ=DAILY;COUNT=10", "2025-05-25T09:00", BERLIN)

    fired = fire_all(schedule, BERLIN, z(2025, 5, 1))

    assert len(fired) == 10
    assert walls([p.fire_at for p in fired], BERLIN)[-1] == "06-03 09:00"
    assert [p.state.remaining_count for p in fired] == list(range(9, -1, -1))


def test_interval_phase_is_kept_by_anchoring_on_real_occurrences() -> None:
    # Trap 2: a fortnightly rule started on a Sunday first fires on the Monday of the next
    # on-week (06-09), not the next day; anchoring on 06-09 keeps 06-23, 07-07.
    schedule = recurring("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", "2025-06-01T09:00", BERLIN)

    fired = fire_all(schedule, BERLIN, z(2025, 5, 31), limit=3)

    assert walls([p.fire_at for p in fired], BERLIN) == [
        "06-09 09:00",
        "06-23 09:00",
        "07-07 09:00",
    ]


@pytest.mark.parametrize("until", ["20260305T140000Z", "20260305T090000"])
def test_until_is_inclusive_in_utc_or_local(until: str) -> None:
    schedule = recurring(f"FREQ=DAILY;UNTIL={until}", "2026-03-02T09:00", NEW_YORK)

    fired = fire_all(schedule, NEW_YORK, z(2026, 3, 1))

    assert [p.fire_at for p in fired] == [z(2026, 3, day, 14) for day in (2, 3, 4, 5)]


def test_utc_until_is_compared_as_an_instant_across_dst() -> None:
    # 2026-03-09 09:00 EDT is 13:00Z, before an UNTIL of 13:30Z; 03-10's is after.
    schedule = recurring("FREQ=DAILY;UNTIL=20260309T133000Z", "2026-03-07T09:00", NEW_YORK)

    instants = preview(schedule, zone=NEW_YORK, after=z(2026, 3, 1), count=10)

    assert instants == [z(2026, 3, 7, 14), z(2026, 3, 8, 13), z(2026, 3, 9, 13)]


def test_an_unsynchronised_start_is_not_an_occurrence() -> None:
    # dateutil's reading (RFC 5545 leaves it undefined): the first match at/after start.
    schedule = recurring("FREQ=WEEKLY;BYDAY=MO", "2026-03-04T09:00", BERLIN)  # a Wednesday

    assert walls(preview(schedule, zone=BERLIN, after=z(2026, 3, 1), count=1), BERLIN) == [
        "03-09 09:00"
    ]


def test_the_schedule_zone_wins_over_the_recipients() -> None:
    schedule = recurring("FREQ=DAILY", "2026-03-02T09:00", KOLKATA)

    assert preview(schedule, zone=NEW_YORK, after=z(2026, 3, 1), count=1) == [z(2026, 3, 2, 3, 30)]


def test_without_a_zone_the_recipients_zone_is_used() -> None:
    schedule = recurring("FREQ=DAILY", "2026-03-02T09:00")

    assert preview(schedule, zone=NEW_YORK, after=z(2026, 3, 1), count=1) == [z(2026, 3, 2, 14)]


# --- relative and once -------------------------------------------------------------------

DUE = z(2026, 3, 8, 13)  # 09:00 EDT, the first morning after New York springs forward


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"offset": "-PT30M"}, z(2026, 3, 8, 12, 30)),
        ({"offset": "PT0S"}, DUE),
        ({"offset": "+PT15M"}, z(2026, 3, 8, 13, 15)),
        # Days are nominal (RFC 5545 §3.3.6): the day before at the same wall time, 09:00
        # EST, which is 25 real hours earlier; "-PT24H" is exactly 24 hours.
        ({"offset": "-P1D"}, z(2026, 3, 7, 14)),
        ({"offset": "-PT24H"}, z(2026, 3, 7, 13)),
        ({"offset": "-P1W"}, z(2026, 3, 1, 14)),
        ({"offset": "-P1DT2H"}, z(2026, 3, 7, 12)),
        ({"on_due_day_at": "08:00"}, z(2026, 3, 8, 12)),
        ({"on_due_day_at": "08:00", "timezone": "Asia/Kolkata"}, z(2026, 3, 8, 2, 30)),
    ],
)
def test_relative_schedules(data: dict[str, Any], expected: datetime) -> None:
    schedule = parse_schedule({"kind": "relative", **data})

    planned = next_fire_at(schedule, zone=NEW_YORK, after=z(2026, 2, 1), due_at=DUE)

    assert planned is not None
    assert planned.fire_at == expected
    assert planned.state == RecurrenceState()


def test_on_due_day_takes_the_due_day_in_the_zone() -> None:
    # 03:30Z on 03-08 is still 03-07 in New York.
    schedule = parse_schedule({"kind": "relative", "on_due_day_at": "09:00"})

    planned = next_fire_at(
        schedule, zone=NEW_YORK, after=z(2026, 2, 1), due_at=z(2026, 3, 8, 3, 30)
    )

    assert planned is not None
    assert planned.fire_at == z(2026, 3, 7, 14)


def test_relative_without_a_due_date_never_fires() -> None:
    schedule = parse_schedule({"kind": "relative", "offset": "-PT30M"})

    assert next_fire_at(schedule, zone=NEW_YORK, after=z(2026, 2, 1)) is None
    assert preview(schedule, zone=NEW_YORK, after=z(2026, 2, 1), count=3) == []


def test_relative_in_the_past_of_after_gives_none() -> None:
    schedule = parse_schedule({"kind": "relative", "offset": "-PT30M"})

    assert next_fire_at(schedule, zone=NEW_YORK, after=DUE, due_at=DUE) is None


def test_once_at_fires_once() -> None:
    schedule = parse_schedule({"kind": "once", "at": "2026-03-08T09:00:00Z"})

    assert preview(schedule, zone=BERLIN, after=z(2026, 3, 1), count=5) == [z(2026, 3, 8, 9)]


def test_parse_offset_splits_nominal_and_exact() -> None:
    offset = parse_offset("-P9DT3H4M5S")

    assert offset.days == -9
    assert offset.exact == -timedelta(hours=3, minutes=4, seconds=5)


@pytest.mark.parametrize("text", ["P1W2D", "P1Y", "P1M", "PT1H2D", "-", "P-1D", "1D"])
def test_parse_offset_follows_the_rfc5545_grammar(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 5545 duration"):
        parse_offset(text)


def test_after_must_be_aware() -> None:
    schedule = parse_schedule({"kind": "once", "at": "2026-03-08T09:00:00Z"})

    with pytest.raises(ValueError, match="naive"):
        next_fire_at(schedule, zone=BERLIN, after=datetime(2026, 3, 1))


def test_preview_count_is_bounded() -> None:
    schedule = recurring("FREQ=DAILY", "2026-03-02T09:00")

    with pytest.raises(InvalidInput) as caught:
        preview(schedule, zone=BERLIN, after=z(2026, 3, 1), count=1001)
    assert caught.value.field == "count"


# --- catch-up ----------------------------------------------------------------------------

HOURLY = recurring("FREQ=HOURLY", "2026-01-01T00:00", BERLIN)
FIRED_AT_0800 = RecurrenceState(anchor_local=datetime(2026, 1, 10, 8), remaining_count=None)


def test_catch_up_returns_every_missed_instant_and_the_next_one() -> None:
    result = catch_up(
        HOURLY,
        zone=BERLIN,
        planned_at=z(2026, 1, 10, 8),
        now=z(2026, 1, 10, 12, 30),
        state=FIRED_AT_0800,
    )

    assert result.due == tuple(z(2026, 1, 10, hour) for hour in (8, 9, 10, 11, 12))
    assert result.due_count == 5
    assert result.latest == z(2026, 1, 10, 12)
    assert result.state == RecurrenceState(datetime(2026, 1, 10, 13), None)
    assert result.next is not None
    assert result.next.fire_at == z(2026, 1, 10, 13)
    assert result.next.state == RecurrenceState(datetime(2026, 1, 10, 14), None)


def test_catch_up_keeps_the_latest_instants_when_capped() -> None:
    result = catch_up(
        HOURLY,
        zone=BERLIN,
        planned_at=z(2026, 1, 10, 8),
        now=z(2026, 1, 10, 12, 30),
        state=FIRED_AT_0800,
        limit=2,
    )

    assert result.due == (z(2026, 1, 10, 11), z(2026, 1, 10, 12))
    assert result.due_count == 5
    assert result.next is not None
    assert result.next.fire_at == z(2026, 1, 10, 13)


def test_catch_up_before_the_planned_instant_has_nothing_due() -> None:
    result = catch_up(
        HOURLY,
        zone=BERLIN,
        planned_at=z(2026, 1, 10, 8),
        now=z(2026, 1, 10, 7, 59),
        state=FIRED_AT_0800,
    )

    assert (result.due, result.due_count, result.latest) == ((), 0, None)
    assert result.state == FIRED_AT_0800
    assert result.next is not None
    assert result.next.fire_at == z(2026, 1, 10, 8)


def test_catch_up_of_a_counted_rule_ends_it() -> None:
    schedule = recurring("FREQ=DAILY;COUNT=5", "2026-01-01T09:00", BERLIN)

    result = catch_up(schedule, zone=BERLIN, planned_at=z(2026, 1, 1, 8), now=z(2026, 2, 1))

    assert result.due_count == 5
    assert result.latest == z(2026, 1, 5, 8)
    assert result.state.remaining_count == 0
    assert result.next is None


def test_catch_up_ignores_instants_before_the_planned_one() -> None:
    # A rule created on 01-10 with a start on 01-01 never fires 01-01..01-09.
    schedule = recurring("FREQ=DAILY", "2026-01-01T09:00", BERLIN)

    result = catch_up(schedule, zone=BERLIN, planned_at=z(2026, 1, 10, 8), now=z(2026, 1, 10, 9))

    assert result.due == (z(2026, 1, 10, 8),)


def test_catch_up_of_a_once_schedule() -> None:
    schedule = parse_schedule({"kind": "once", "at": "2026-03-08T09:00:00Z"})

    result = catch_up(schedule, zone=BERLIN, planned_at=z(2026, 3, 8, 9), now=z(2026, 3, 9))

    assert result.due == (z(2026, 3, 8, 9),)
    assert result.next is None


def test_due_between_is_half_open() -> None:
    planned = due_between(
        HOURLY, zone=BERLIN, after=z(2026, 1, 10, 8), until=z(2026, 1, 10, 10), state=FIRED_AT_0800
    )

    assert [p.fire_at for p in planned] == [z(2026, 1, 10, 9), z(2026, 1, 10, 10)]


# --- cost does not grow with the rule's age ----------------------------------------------


class Counter:
    def __init__(self) -> None:
        self.conversions = 0
        self.dtstarts: list[datetime] = []


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Counter:
    counter = Counter()
    real_convert = local_to_utc
    real_walls_from = CompiledRule.walls_from

    def convert(local: datetime, zone: ZoneInfo) -> datetime:
        counter.conversions += 1
        return real_convert(local, zone)

    def walls_from(self: CompiledRule, dtstart: datetime) -> Any:
        counter.dtstarts.append(dtstart)
        return real_walls_from(self, dtstart)

    monkeypatch.setattr(recurrence, "local_to_utc", convert)
    monkeypatch.setattr(CompiledRule, "walls_from", walls_from)
    return counter


def test_anchored_next_of_a_ten_year_old_hourly_rule_examines_a_handful(counted: Counter) -> None:
    schedule = recurring("FREQ=HOURLY", "2016-01-01T00:30", BERLIN)
    state = RecurrenceState(anchor_local=datetime(2026, 3, 1, 10, 30), remaining_count=None)

    planned = next_fire_at(schedule, zone=BERLIN, after=z(2026, 3, 1, 9, 30), state=state)

    assert planned is not None
    assert planned.fire_at == z(2026, 3, 1, 10, 30)
    assert counted.dtstarts == [datetime(2026, 3, 1, 10, 30)]  # dateutil starts at the anchor
    assert counted.conversions <= 3  # the anchor, itself skipped, and the answer


def test_anchored_count_rule_examines_a_handful(counted: Counter) -> None:
    schedule = recurring("FREQ=HOURLY;COUNT=100000", "2016-01-01T00:30", BERLIN)
    state = RecurrenceState(anchor_local=datetime(2026, 3, 1, 10, 30), remaining_count=12_345)

    planned = next_fire_at(schedule, zone=BERLIN, after=z(2026, 3, 1, 9, 30), state=state)

    assert planned is not None
    assert planned.state.remaining_count == 12_344
    assert counted.dtstarts == [datetime(2026, 3, 1, 10, 30)]
    assert counted.conversions <= 3


def test_first_planning_of_an_old_rule_converts_only_near_after(counted: Counter) -> None:
    # Without a state dateutil still walks from DTSTART, but the engine converts only the
    # wall times within the two-day margin before `after`, not ten years of them.
    schedule = recurring("FREQ=HOURLY", "2016-01-01T00:30", BERLIN)

    planned = next_fire_at(schedule, zone=BERLIN, after=z(2026, 3, 1, 9, 45))

    assert planned is not None
    assert planned.fire_at == z(2026, 3, 1, 10, 30)
    assert counted.conversions <= 2 * 24 + 3
