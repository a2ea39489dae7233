"""Time-zone semantics through the stored rule and the real FIRE stage (both dialects).

Each case creates a rule through the store, then fires it at every stored
``next_fire_at`` in turn (``fire_through``): the list is the sequence the engine really
follows, re-anchored on each occurrence. RFC 5545 §3.3.5: a repeated wall time is its
first occurrence, a missing one is read with the offset before the gap, and a recurring
wall time stays put across DST (https://www.rfc-editor.org/rfc/rfc5545#section-3.3.5).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.integration.rules_support import add_rule, fire_through, occurrences, stored_rule, world


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def daily(start: str, zone: str, rrule: str = "FREQ=DAILY") -> dict[str, Any]:
    return {"kind": "recurring", "rrule": rrule, "start": start, "timezone": zone}


CASES = [
    (
        "New York spring forward",
        daily("2026-03-06T09:00", "America/New_York"),
        utc(2026, 3, 5),
        [utc(2026, 3, 6, 14), utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13)],
    ),
    (
        "New York fall back",
        daily("2026-10-31T09:00", "America/New_York"),
        utc(2026, 10, 30),
        [utc(2026, 10, 31, 13), utc(2026, 11, 1, 14), utc(2026, 11, 2, 14)],
    ),
    (
        "Berlin spring forward",
        daily("2026-03-28T09:00", "Europe/Berlin"),
        utc(2026, 3, 27),
        [utc(2026, 3, 28, 8), utc(2026, 3, 29, 7), utc(2026, 3, 30, 7)],
    ),
    (
        "Lord Howe 30-minute fall back",
        daily("2026-04-03T09:00", "Australia/Lord_Howe"),
        utc(2026, 4, 1),
        [
            utc(2026, 4, 2, 22),
            utc(2026, 4, 3, 22),
            utc(2026, 4, 4, 22, 30),
            utc(2026, 4, 5, 22, 30),
        ],
    ),
    (
        "Kolkata has no DST and a half-hour offset",
        daily("2026-03-07T09:00", "Asia/Kolkata"),
        utc(2026, 3, 6),
        [utc(2026, 3, 7, 3, 30), utc(2026, 3, 8, 3, 30), utc(2026, 3, 9, 3, 30)],
    ),
    (
        # Samoa skipped 2011-12-30 (-10 → +14): that day's 09:00 is read with the offset
        # before the gap, which is 12-31 09:00 +14, the same instant as 12-31's own
        # 09:00, so it fires once and the sequence continues.
        "Apia skipped 2011-12-30",
        daily("2011-12-28T09:00", "Pacific/Apia"),
        utc(2011, 12, 27),
        [
            utc(2011, 12, 28, 19),
            utc(2011, 12, 29, 19),
            utc(2011, 12, 30, 19),
            utc(2011, 12, 31, 19),
        ],
    ),
]


@pytest.mark.parametrize(
    ("schedule", "now", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_recurring_local_time_follows_the_wall_clock(
    make_app: Any, schedule: dict[str, Any], now: datetime, expected: list[datetime]
) -> None:
    app = make_app(now)
    world(app, now=now)
    add_rule(app, schedule, now=now)

    fired = fire_through(app, steps=len(expected))

    assert fired == expected
    zone = ZoneInfo(schedule["timezone"])
    wall = datetime.fromisoformat(schedule["start"]).time()
    local_days = [instant.astimezone(zone) for instant in fired]
    skipped = schedule["timezone"] == "Pacific/Apia"
    assert all(local.time() == wall for local in local_days)
    assert len({local.date() for local in local_days}) == len(fired)
    # Each occurrence row is at the stored instant, pending for the DECIDE stage.
    assert [o.fire_at for o in occurrences(app)] == expected
    assert skipped or all(o.coalesced == 0 for o in occurrences(app))


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        # 02:30 does not exist on 2026-03-08 in New York: read with EST, it is 03:30 EDT.
        (
            daily("2026-03-07T02:30", "America/New_York"),
            [utc(2026, 3, 7, 7, 30), utc(2026, 3, 8, 7, 30), utc(2026, 3, 9, 6, 30)],
        ),
        # 01:30 happens twice on 2026-11-01: the first (EDT, 05:30Z) is the one.
        (
            daily("2026-10-31T01:30", "America/New_York"),
            [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)],
        ),
        # Berlin's 2026-10-25 02:30 happens twice: the first is CEST (00:30Z).
        (
            daily("2026-10-24T02:30", "Europe/Berlin"),
            [utc(2026, 10, 24, 0, 30), utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)],
        ),
        # Lord Howe jumps 02:00 → 02:30 on 2026-10-04: 02:15 read at +10:30 is 02:45 +11.
        (
            daily("2026-10-03T02:15", "Australia/Lord_Howe"),
            [utc(2026, 10, 2, 15, 45), utc(2026, 10, 3, 15, 45), utc(2026, 10, 4, 15, 15)],
        ),
    ],
    ids=["NY gap", "NY repeated hour", "Berlin repeated hour", "Lord Howe half-hour gap"],
)
def test_gaps_and_repeats_follow_rfc_5545(
    make_app: Any, schedule: dict[str, Any], expected: list[datetime]
) -> None:
    now = expected[0].replace(hour=0, minute=0)
    app = make_app(now)
    world(app, now=now)
    add_rule(app, schedule, now=now)

    assert fire_through(app, steps=len(expected)) == expected


def test_a_once_wall_time_in_the_gap_is_stored_shifted_forward(make_app: Any) -> None:
    now = utc(2026, 3, 1)
    app = make_app(now)
    world(app, now=now)

    rule = add_rule(
        app,
        {"kind": "once", "local": "2026-03-08T02:30", "timezone": "America/New_York"},
        now=now,
    )

    assert rule.next_fire_at == utc(2026, 3, 8, 7, 30)
    assert fire_through(app, steps=3) == [utc(2026, 3, 8, 7, 30)]
    assert stored_rule(app).next_fire_at is None


def test_a_schedule_without_a_zone_uses_the_recipients(make_app: Any) -> None:
    now = utc(2026, 3, 5)
    app = make_app(now)
    world(app, timezone="America/New_York", now=now)

    add_rule(
        app, {"kind": "recurring", "rrule": "FREQ=DAILY", "start": "2026-03-07T09:00"}, now=now
    )

    assert fire_through(app, steps=2) == [utc(2026, 3, 7, 14), utc(2026, 3, 8, 13)]


# --- COUNT and UNTIL through firing ------------------------------------------------------


def test_count_is_honoured_one_firing_at_a_time(make_app: Any) -> None:
    now = utc(2026, 3, 5)
    app = make_app(now)
    world(app, now=now)
    add_rule(app, daily("2026-03-07T09:00", "America/New_York", "FREQ=DAILY;COUNT=3"), now=now)

    fired = fire_through(app, steps=10)

    assert fired == [utc(2026, 3, 7, 14), utc(2026, 3, 8, 13), utc(2026, 3, 9, 13)]
    rule = stored_rule(app)
    assert rule.next_fire_at is None and rule.remaining_count == 0
    assert app.pipeline.fire(utc(2026, 4, 1)).claimed == 0


def test_count_counts_from_the_start_even_when_created_later(make_app: Any) -> None:
    """COUNT=4 from 03-01: created on 03-02 12:00Z, only 03-03 and 03-04 are left."""
    now = utc(2026, 3, 2, 12)
    app = make_app(now)
    world(app, now=now)
    add_rule(app, daily("2026-03-01T09:00", "UTC", "FREQ=DAILY;COUNT=4"), now=now)

    assert fire_through(app, steps=10) == [utc(2026, 3, 3, 9), utc(2026, 3, 4, 9)]


def test_until_is_honoured(make_app: Any) -> None:
    now = utc(2026, 3, 5)
    app = make_app(now)
    world(app, now=now)
    add_rule(
        app,
        daily("2026-03-06T09:00", "America/New_York", "FREQ=DAILY;UNTIL=20260309T130000Z"),
        now=now,
    )

    fired = fire_through(app, steps=10)

    assert fired == [
        utc(2026, 3, 6, 14),
        utc(2026, 3, 7, 14),
        utc(2026, 3, 8, 13),
        utc(2026, 3, 9, 13),
    ]
    assert stored_rule(app).next_fire_at is None


def test_count_is_honoured_when_every_instant_was_missed(make_app: Any) -> None:
    """After downtime, a counted rule coalesces what is left and ends: no extra firing."""
    now = utc(2026, 3, 5)
    app = make_app(now)
    world(app, now=now)
    add_rule(app, daily("2026-03-06T09:00", "UTC", "FREQ=DAILY;COUNT=5"), now=now)

    report = app.pipeline.fire(utc(2026, 3, 20))

    assert (report.fired, report.coalesced) == (1, 4)
    [occ] = occurrences(app)
    assert (occ.fire_at, occ.coalesced) == (utc(2026, 3, 10, 9), 4)
    assert stored_rule(app).next_fire_at is None
