"""A refused rule names the field at fault and leaves nothing behind (both dialects)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from scheduler.errors import Conflict, InvalidInput
from tests.integration.rules_support import T0, add_rule, rule_count, stored_rule, world

NY = "America/New_York"

REFUSED: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    (
        "unknown zone",
        {"kind": "recurring", "rrule": "FREQ=DAILY", "start": "2026-03-03T09:00"},
        {"timezone": "Mars/Olympus_Mons"},
        "schedule.timezone",
    ),
    (
        "unknown zone on a once wall time",
        {"kind": "once", "local": "2026-03-08T09:00", "timezone": "Europe/Berln"},
        {},
        "schedule.timezone",
    ),
    (
        "malformed rrule",
        {"kind": "recurring", "rrule": "FREQ=SOMETIMES", "start": "2026-03-03T09:00"},
        {},
        "schedule.rrule",
    ),
    (
        "rrule with a bad part",
        {"kind": "recurring", "rrule": "FREQ=DAILY;BYHOUR=25", "start": "2026-03-03T09:00"},
        {},
        "schedule.rrule",
    ),
    (
        "instant without an offset",
        {"kind": "once", "at": "2026-03-08T09:00:00"},
        {},
        "schedule.at",
    ),
    (
        "start with an offset",
        {"kind": "recurring", "rrule": "FREQ=DAILY", "start": "2026-03-03T09:00+01:00"},
        {},
        "schedule.start",
    ),
    (
        "once in the past never fires",
        {"kind": "once", "at": (T0 - timedelta(minutes=1)).isoformat()},
        {},
        "schedule.at",
    ),
    (
        "UNTIL before now never fires",
        {
            "kind": "recurring",
            "rrule": "FREQ=DAILY;UNTIL=20260301T000000Z",
            "start": "2026-02-01T09:00",
        },
        {},
        "schedule.rrule",
    ),
    (
        "a date that does not exist never fires",
        {
            "kind": "recurring",
            "rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
            "start": "2026-03-03T09:00",
        },
        {},
        "schedule.rrule",
    ),
    (
        "more frequent than the minimum interval",
        {"kind": "recurring", "rrule": "FREQ=MINUTELY;INTERVAL=2", "start": "2026-03-03T09:00"},
        {},
        "schedule.rrule",
    ),
    (
        "two instants closer than the minimum interval",
        {"kind": "recurring", "rrule": "FREQ=HOURLY;BYMINUTE=0,1", "start": "2026-03-03T09:00"},
        {},
        "schedule.rrule",
    ),
    (
        "unknown kind",
        {"kind": "sometimes"},
        {},
        "schedule.kind",
    ),
    (
        "bad offset",
        {"kind": "relative", "offset": "30 minutes before"},
        {},
        "schedule.offset",
    ),
]


@pytest.mark.parametrize(
    ("schedule", "extra", "field"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_a_refused_schedule_names_the_field_and_stores_nothing(
    make_app: Any, schedule: dict[str, Any], extra: dict[str, Any], field: str
) -> None:
    app = make_app(T0)
    world(app, timezone=NY)

    with pytest.raises(InvalidInput) as refused:
        add_rule(app, schedule | extra)

    assert refused.value.field == field, refused.value
    assert rule_count(app) == 0


def test_a_relative_rule_without_a_task_is_refused(make_app: Any) -> None:
    app = make_app(T0)
    world(app)

    with pytest.raises(InvalidInput) as refused:
        add_rule(app, {"kind": "relative", "offset": "-PT30M"}, task_id=None, workspace_id="w1")

    assert refused.value.field == "schedule.kind"
    assert rule_count(app) == 0


def test_a_recipients_unknown_zone_is_refused_when_the_schedule_names_none(
    make_app: Any,
) -> None:
    """Time zones stored before a tzdata update may vanish; the rule still names the field."""
    app = make_app(T0)
    world(app)
    from scheduler.tables import Recipient

    with app.sessions.begin() as session:
        recipient = session.get(Recipient, "r1")
        assert recipient is not None
        recipient.timezone = "Atlantis/Capital"

    with pytest.raises(InvalidInput) as refused:
        add_rule(app, {"kind": "recurring", "rrule": "FREQ=DAILY", "start": "2026-03-03T09:00"})

    assert refused.value.field == "schedule.timezone"
    assert rule_count(app) == 0


def test_the_minimum_interval_comes_from_the_settings(make_app: Any) -> None:
    app = make_app(T0, min_rule_interval_seconds=7200)
    world(app)
    hourly = {"kind": "recurring", "rrule": "FREQ=HOURLY", "start": "2026-03-03T09:00"}

    with pytest.raises(InvalidInput, match="minimum interval is 2 hours"):
        add_rule(app, hourly)

    assert rule_count(app) == 0
    add_rule(app, hourly | {"rrule": "FREQ=HOURLY;INTERVAL=2"})
    assert rule_count(app) == 1


def test_the_same_client_id_twice_stores_one_rule(make_app: Any) -> None:
    app = make_app(T0)
    world(app)
    schedule = {"kind": "once", "at": "2026-03-08T09:00:00Z"}
    first = add_rule(app, schedule)

    again, created = app.rules.create(
        {"id": "rule-1", "recipient_id": "r1", "task_id": "t1", "schedule": schedule}, now=T0
    )

    assert not created and again.id == first.id
    assert rule_count(app) == 1
    with pytest.raises(Conflict):
        app.rules.create(
            {
                "id": "rule-1",
                "recipient_id": "r1",
                "task_id": "t1",
                "schedule": {"kind": "once", "at": "2026-03-09T09:00:00Z"},
            },
            now=T0,
        )
    assert stored_rule(app).schedule == {"kind": "once", "at": "2026-03-08T09:00:00Z"}


def test_a_refused_patch_changes_nothing(make_app: Any) -> None:
    app = make_app(T0)
    world(app)
    rule = add_rule(app, {"kind": "once", "at": "2026-03-08T09:00:00Z"})

    with pytest.raises(InvalidInput) as refused:
        app.rules.patch(
            "rule-1",
            {
                "schedule": {
                    "kind": "recurring",
                    "rrule": "FREQ=MINUTELY",
                    "start": "2026-03-03T09:00",
                }
            },
            now=T0,
        )

    assert refused.value.field == "schedule.rrule"
    after = stored_rule(app)
    assert (after.schedule, after.version, after.next_fire_at) == (
        rule.schedule,
        rule.version,
        rule.next_fire_at,
    )
