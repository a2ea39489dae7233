"""Catch-up after downtime, and an instant fires once (both dialects).

Missed instants of one rule coalesce into one occurrence at the latest of them; one
later than its topic's ``max_lateness`` is recorded ``expired`` (layer ``lateness``) and
not sent. ``task-reminder`` allows 1 hour, ``workspace-digest`` 12 hours.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from scheduler.tables import ReminderRule
from tests.integration.rules_support import add_rule, occurrences, outbox, stored_rule, world

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
DAILY_0900 = {"kind": "recurring", "rrule": "FREQ=DAILY", "start": "2026-03-02T09:00"}
WINDOW = timedelta(seconds=61)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


def test_missed_instants_coalesce_into_one_occurrence(make_app: Any) -> None:
    app = make_app(T0)
    world(app, now=T0)
    add_rule(app, DAILY_0900, now=T0)

    back = at(6, 9, 30)  # down since before 03-02 09:00: five instants missed
    report = app.pipeline.fire(back)

    assert (report.claimed, report.fired, report.coalesced) == (1, 1, 4)
    [occ] = occurrences(app)
    assert (occ.fire_at, occ.coalesced) == (at(6, 9), 4)
    rule = stored_rule(app)
    assert rule.next_fire_at == at(7, 9) and rule.last_fired_at == at(6, 9)
    app.tick(back)
    app.tick(back + WINDOW)
    assert len(outbox(app)) == 1  # 30 minutes late is within the topic's hour


def test_an_occurrence_past_max_lateness_is_expired_not_sent(make_app: Any) -> None:
    app = make_app(T0)
    world(app, now=T0)
    add_rule(app, DAILY_0900, now=T0)

    back = at(6, 10, 30)  # the latest missed instant is 90 minutes old
    app.tick(back)
    app.tick(back + WINDOW)

    assert outbox(app) == []
    [occ] = occurrences(app)
    assert (occ.status, occ.layer, occ.coalesced) == ("expired", "lateness", 4)
    assert occ.reason == "90 min late, past the topic's limit"
    assert stored_rule(app).next_fire_at == at(7, 9)
    # The rule carries on: the next instant is sent on time.
    app.tick(at(7, 9))
    app.tick(at(7, 9) + WINDOW)
    assert len(outbox(app)) == 1


def test_a_missed_once_rule_expires(make_app: Any) -> None:
    app = make_app(T0)
    world(app, now=T0)
    add_rule(app, {"kind": "once", "at": at(2, 9).isoformat()}, now=T0)

    app.tick(at(2, 11))

    [occ] = occurrences(app)
    assert (occ.status, occ.layer) == ("expired", "lateness")
    assert stored_rule(app).next_fire_at is None


def test_lateness_is_per_topic(make_app: Any) -> None:
    """A digest two hours late is still useful (12 h limit); a task reminder is not."""
    app = make_app(T0)
    world(app, due_at=at(1, 18), now=T0)
    add_rule(app, DAILY_0900, rule_id="reminder", now=T0)
    add_rule(
        app,
        DAILY_0900,
        rule_id="digest",
        task_id=None,
        workspace_id="w1",
        topic="workspace-digest",
        now=T0,
    )

    app.tick(at(2, 11))
    app.tick(at(2, 11) + WINDOW)

    status = {o.rule_id: o.status for o in occurrences(app)}
    assert status == {"reminder": "expired", "digest": "sent"}
    assert len(outbox(app)) == 1


def test_firing_again_at_the_same_instant_does_nothing(make_app: Any) -> None:
    app = make_app(T0)
    world(app, now=T0)
    add_rule(app, DAILY_0900, now=T0)

    first = app.pipeline.fire(at(2, 9))
    second = app.pipeline.fire(at(2, 9))

    assert (first.fired, second.claimed, second.fired) == (1, 0, 0)
    assert len(occurrences(app)) == 1


def test_an_instant_already_fired_is_not_inserted_twice(make_app: Any) -> None:
    """If a rule is put back on an instant it fired (a restore, a replayed plan), the
    unique (rule_id, fire_at) key and ON CONFLICT DO NOTHING keep one occurrence, and the
    rule still advances."""
    app = make_app(T0)
    world(app, now=T0)
    add_rule(app, DAILY_0900, now=T0)
    app.pipeline.fire(at(2, 9))
    with app.sessions.begin() as session:
        session.execute(
            update(ReminderRule)
            .where(ReminderRule.id == "rule-1")  # type: ignore[arg-type]
            .values(next_fire_at=at(2, 9), anchor_local=None, remaining_count=None)
        )

    report = app.pipeline.fire(at(2, 9, 1))

    assert (report.claimed, report.fired) == (1, 0)
    assert len(occurrences(app)) == 1
    assert stored_rule(app).next_fire_at == at(3, 9)


def test_a_stored_schedule_the_code_cannot_read_does_not_block_the_others(
    make_app: Any,
) -> None:
    app = make_app(T0)
    world(app, now=T0)
    add_rule(app, DAILY_0900, rule_id="broken", now=T0)
    add_rule(app, DAILY_0900, rule_id="fine", now=T0)
    with app.sessions.begin() as session:
        session.execute(
            update(ReminderRule)
            .where(ReminderRule.id == "broken")  # type: ignore[arg-type]
            .values(schedule={"kind": "recurring", "rrule": "FREQ=NEVER", "start": "x"})
        )

    report = app.pipeline.fire(at(2, 9))

    assert (report.claimed, report.fired) == (2, 1)
    assert [o.rule_id for o in occurrences(app)] == ["fine"]
    assert stored_rule(app, "broken").next_fire_at is None
    assert stored_rule(app, "fine").next_fire_at == at(3, 9)
