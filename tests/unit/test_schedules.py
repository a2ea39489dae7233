"""Schedule payloads (DESIGN §13), time-zone resolution and the checks that refuse bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import pytz

from scheduler.errors import InvalidInput
from scheduler.rules.schedules import (
    OnceSchedule,
    RecurringSchedule,
    RelativeSchedule,
    parse_schedule,
    schedule_to_json,
    validate_schedule,
)
from scheduler.rules.timezones import common_timezones, resolve_zone

NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

DESIGN_EXAMPLES: list[dict[str, Any]] = [
    {"kind": "once", "at": "2026-03-08T09:00:00Z"},
    {"kind": "once", "local": "2026-03-08T09:00", "timezone": "Europe/Berlin"},
    {"kind": "relative", "offset": "-PT30M"},
    {"kind": "relative", "on_due_day_at": "09:00"},
    {
        "kind": "recurring",
        "rrule": "FREQ=WEEKLY;BYDAY=MO,WE",
        "start": "2026-03-02T09:00",
        "timezone": "America/New_York",
    },
]


def refused(data: dict[str, Any]) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        parse_schedule(data)
    return caught.value


def refused_by_validation(data: dict[str, Any], **kwargs: Any) -> InvalidInput:
    schedule = parse_schedule(data)
    with pytest.raises(InvalidInput) as caught:
        validate_schedule(schedule, zone=kwargs.pop("zone", NEW_YORK), now=NOW, **kwargs)
    return caught.value


# --- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize("data", DESIGN_EXAMPLES)
def test_design_examples_parse_and_round_trip_unchanged(data: dict[str, Any]) -> None:
    schedule = parse_schedule(data)

    assert schedule_to_json(schedule) == data
    assert parse_schedule(schedule_to_json(schedule)) == schedule


def test_kind_picks_the_model() -> None:
    kinds = [type(parse_schedule(data)) for data in DESIGN_EXAMPLES]

    assert kinds == [
        OnceSchedule,
        OnceSchedule,
        RelativeSchedule,
        RelativeSchedule,
        RecurringSchedule,
    ]


def test_an_instant_is_stored_in_utc() -> None:
    schedule = parse_schedule({"kind": "once", "at": "2026-03-08T10:00:00+01:00"})

    assert isinstance(schedule, OnceSchedule)
    assert schedule.at == datetime(2026, 3, 8, 9, 0, tzinfo=UTC)
    assert schedule_to_json(schedule) == {"kind": "once", "at": "2026-03-08T09:00:00Z"}


def test_rrule_is_stored_in_canonical_form() -> None:
    schedule = parse_schedule(
        {"kind": "recurring", "rrule": "RRULE:freq=daily;byhour=9,17", "start": "2026-03-02T09:00"}
    )

    assert schedule_to_json(schedule)["rrule"] == "FREQ=DAILY;BYHOUR=9,17"


def test_seconds_in_a_wall_time_are_kept() -> None:
    schedule = parse_schedule({"kind": "once", "local": "2026-03-08T09:00:30"})

    assert schedule_to_json(schedule)["local"] == "2026-03-08T09:00:30"


def test_python_callers_may_pass_datetimes_and_pytz_zones() -> None:
    schedule = OnceSchedule(local=datetime(2026, 3, 8, 9), timezone=pytz.timezone("Europe/Berlin"))

    assert schedule.timezone == "Europe/Berlin"
    assert schedule.local == datetime(2026, 3, 8, 9)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"kind": "once", "at": "2026-03-08T09:00:00"},
            "schedule.at",
            "an instant without an offset is refused",
        ),
        ({"kind": "once", "at": "2026-03-08"}, "schedule.at", "without an offset"),
        ({"kind": "once", "at": 1772960400}, "schedule.at", "ISO 8601"),
        ({"kind": "once"}, "schedule.at", "give 'at'"),
        (
            {"kind": "once", "at": "2026-03-08T09:00:00Z", "local": "2026-03-08T09:00"},
            "schedule.local",
            "not both",
        ),
        (
            {"kind": "once", "at": "2026-03-08T09:00:00Z", "timezone": "Europe/Berlin"},
            "schedule.timezone",
            "goes with 'local'",
        ),
        (
            {"kind": "once", "local": "2026-03-08T09:00+01:00"},
            "schedule.local",
            "without an offset",
        ),
        ({"kind": "once", "local": "2026-13-08T09:00"}, "schedule.local", "month"),
        ({"kind": "once", "local": "1066-10-14T09:00"}, "schedule.local", "outside"),
        (
            {"kind": "once", "local": "2026-03-08T09:00", "timezone": "Mars/Olympus_Mons"},
            "schedule.timezone",
            "unknown time zone",
        ),
        (
            {"kind": "once", "local": "2026-03-08T09:00", "timezone": "localtime"},
            "schedule.timezone",
            "unknown time zone",
        ),
        ({"kind": "relative"}, "schedule.offset", "give 'offset'"),
        (
            {"kind": "relative", "offset": "-P1D", "on_due_day_at": "09:00"},
            "schedule.on_due_day_at",
            "not both",
        ),
        ({"kind": "relative", "offset": "-P1M"}, "schedule.offset", "RFC 5545 duration"),
        ({"kind": "relative", "offset": "PT"}, "schedule.offset", "RFC 5545 duration"),
        ({"kind": "relative", "offset": "-P4000D"}, "schedule.offset", "10 years"),
        ({"kind": "relative", "on_due_day_at": "9:00"}, "schedule.on_due_day_at", "HH:MM"),
        ({"kind": "relative", "on_due_day_at": "24:00"}, "schedule.on_due_day_at", "HH:MM"),
        ({"kind": "recurring", "start": "2026-03-02T09:00"}, "schedule.rrule", "Field required"),
        ({"kind": "recurring", "rrule": "FREQ=DAILY"}, "schedule.start", "Field required"),
        ({"kind": "weekly"}, "schedule.kind", "kind must be one of"),
        ({"at": "2026-03-08T09:00:00Z"}, "schedule.kind", "kind must be one of"),
        (
            {"kind": "once", "at": "2026-03-08T09:00:00Z", "channel": "sms"},
            "schedule.channel",
            "Extra inputs",
        ),
    ],
)
def test_a_bad_payload_names_its_field(data: dict[str, Any], field: str, message: str) -> None:
    error = refused(data)

    assert error.field == field
    assert message in error.message


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("BYDAY=MO", "FREQ is required"),
        ("FREQ=SECONDLY", "FREQ must be one of"),
        ("FREQ=MINUTELY;BYSECOND=0", "BYSECOND is not supported"),
        ("DTSTART:20260302T090000\nRRULE:FREQ=DAILY", "DTSTART is not part of the rule"),
        ("FREQ=DAILY\nRDATE:20260302T090000", "expected one RRULE"),
        ("FREQ=DAILY;COUNT=3;UNTIL=20260401T000000Z", "COUNT and UNTIL"),
        ("FREQ=DAILY;BYEASTER=0", "unknown rule part BYEASTER"),
        ("FREQ=DAILY;INTERVAL=0", "INTERVAL: 0 is outside"),
        ("FREQ=DAILY;INTERVAL=2;INTERVAL=3", "given twice"),
        ("FREQ=DAILY;COUNT=0", "COUNT: 0 is outside"),
        ("FREQ=DAILY;UNTIL=20260401", "UNTIL must be a date-time"),
        ("FREQ=DAILY;UNTIL=20260231T000000Z", "not a real date-time"),
        ("FREQ=DAILY;BYHOUR=24", "BYHOUR: 24 is outside"),
        ("FREQ=MONTHLY;BYMONTHDAY=0", "BYMONTHDAY: 0 is not allowed"),
        ("FREQ=WEEKLY;BYDAY=1MO", "needs FREQ=MONTHLY or YEARLY"),
        ("FREQ=WEEKLY;BYMONTHDAY=1", "BYMONTHDAY cannot be used with FREQ=WEEKLY"),
        ("FREQ=MONTHLY;BYYEARDAY=1", "BYYEARDAY cannot be used"),
        ("FREQ=MONTHLY;BYWEEKNO=1", "BYWEEKNO needs FREQ=YEARLY"),
        ("FREQ=DAILY;BYSETPOS=1", "BYSETPOS needs another"),
        ("FREQ=WEEKLY;BYDAY=XX", "not a weekday"),
        ("FREQ=DAILY;;", "is not NAME=VALUE"),
        ("FREQ=HOURLY;INTERVAL=2;BYHOUR=4", "cannot be read"),  # 09:00 + 2k hours,
    ],
)
def test_a_bad_rrule_is_refused_with_the_part_named(rule: str, message: str) -> None:
    error = refused({"kind": "recurring", "rrule": rule, "start": "2026-03-02T09:00"})

    assert error.field == "schedule.rrule"
    assert message in error.message


def test_a_non_mapping_is_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_schedule("every monday")  # type: ignore[arg-type]

    assert caught.value.field == "schedule"


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize("data", DESIGN_EXAMPLES)
def test_design_examples_are_valid_before_they_are_due(data: dict[str, Any]) -> None:
    validate_schedule(parse_schedule(data), zone=NEW_YORK, now=NOW)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"kind": "once", "at": "2026-03-01T12:00:00Z"}, "schedule.at"),
        ({"kind": "once", "local": "2026-03-01T07:00"}, "schedule.local"),
    ],
)
def test_a_once_schedule_at_or_before_now_is_refused(data: dict[str, Any], field: str) -> None:
    error = refused_by_validation(data)

    assert error.field == field
    assert "not in the future" in error.message


def test_a_once_local_time_uses_the_recipients_zone_when_it_names_none() -> None:
    # 07:30 in New York is 12:30Z, after NOW; the same wall time in UTC would be past.
    schedule = parse_schedule({"kind": "once", "local": "2026-03-01T07:30"})

    validate_schedule(schedule, zone=NEW_YORK, now=NOW)
    with pytest.raises(InvalidInput):
        validate_schedule(schedule, zone=ZoneInfo("UTC"), now=NOW)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", "never produces an occurrence"),
        ("FREQ=YEARLY;BYMONTH=4;BYMONTHDAY=31", "never produces an occurrence"),
        ("FREQ=DAILY;INTERVAL=7;BYDAY=TU", "never produces an occurrence"),  # start is a Monday
        ("FREQ=DAILY;COUNT=3", "COUNT/UNTIL leave no occurrence after now"),
        ("FREQ=DAILY;UNTIL=20260228T000000Z", "COUNT/UNTIL leave no occurrence after now"),
        ("FREQ=DAILY;UNTIL=20260228T090000", "COUNT/UNTIL leave no occurrence after now"),
        ("FREQ=MINUTELY", "repeats every 1 minute; the minimum interval is 5 minutes"),
        ("FREQ=MINUTELY;INTERVAL=4", "repeats every 4 minutes"),
        ("FREQ=DAILY;BYMINUTE=0,1", "only 1 minute apart (09:00 and 09:01)"),
        ("FREQ=HOURLY;BYMINUTE=58,59", "only 1 minute apart"),
        ("FREQ=HOURLY;BYMINUTE=0,58", "only 2 minutes apart (09:58 and 10:00)"),
    ],
)
def test_a_rule_that_cannot_fire_or_fires_too_often_is_refused(rule: str, message: str) -> None:
    error = refused_by_validation(
        {"kind": "recurring", "rrule": rule, "start": "2026-02-23T09:00"}  # a Monday
    )

    assert error.field == "schedule.rrule"
    assert message in error.message


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=MINUTELY;INTERVAL=5",
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29",  # leap days only: rare, but real
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO",  # a leap day on a Monday
        "FREQ=MONTHLY;BYDAY=-1FR",
        "FREQ=DAILY;UNTIL=20260302T090000",
        "FREQ=DAILY;COUNT=20",
    ],
)
def test_a_sparse_or_bounded_rule_that_still_fires_is_accepted(rule: str) -> None:
    schedule = parse_schedule({"kind": "recurring", "rrule": rule, "start": "2026-02-23T09:00"})

    validate_schedule(schedule, zone=NEW_YORK, now=NOW)


def test_the_minimum_interval_is_a_parameter() -> None:
    data = {"kind": "recurring", "rrule": "FREQ=HOURLY", "start": "2026-03-02T09:00"}

    validate_schedule(parse_schedule(data), zone=NEW_YORK, now=NOW)
    error = refused_by_validation(data, min_interval=timedelta(hours=2))
    assert "repeats every 1 hour; the minimum interval is 2 hours" in error.message


def test_an_unknown_zone_on_a_constructed_schedule_is_refused_by_validation() -> None:
    schedule = OnceSchedule.model_construct(
        kind="once", at=None, local=datetime(2026, 3, 8, 9), timezone="Atlantis/Capital"
    )

    with pytest.raises(InvalidInput) as caught:
        validate_schedule(schedule, zone=NEW_YORK, now=NOW)
    assert caught.value.field == "schedule.timezone"


# --- time zones --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("UTC", "UTC"),
        (ZoneInfo("Asia/Kolkata"), "Asia/Kolkata"),
        (pytz.timezone("Australia/Lord_Howe"), "Australia/Lord_Howe"),
        (pytz.utc, "UTC"),
        (UTC, "UTC"),
    ],
)
def test_resolve_zone_gives_zoneinfo(value: Any, name: str) -> None:
    zone = resolve_zone(value)

    assert isinstance(zone, ZoneInfo)
    assert zone.key == name


@pytest.mark.parametrize(
    "value",
    [
        "Europe/Berlinn",
        "europe/berlin",
        "",
        "localtime",
        "../etc/passwd",
        timezone(timedelta(hours=2)),
    ],
)
def test_resolve_zone_refuses_what_is_not_an_iana_zone(value: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        resolve_zone(value, field="recipient.timezone")

    assert caught.value.field == "recipient.timezone"
    assert "unknown time zone" in caught.value.message


def test_resolve_zone_names_the_timezone_field_by_default() -> None:
    with pytest.raises(InvalidInput) as caught:
        resolve_zone("Nowhere/Special")

    assert caught.value.field == "timezone"


def test_common_timezones_is_pytz_curated_list_and_all_resolve() -> None:
    names = common_timezones()

    assert "Europe/Berlin" in names
    assert "America/New_York" in names
    assert "US/Pacific-New" not in names
    assert len(names) > 400
    assert all(resolve_zone(name).key == name for name in names)
