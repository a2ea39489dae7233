"""Relative rules follow their task; snooze fires once more (both dialects).

A due-date change re-plans the task's relative rules in the task's own transaction and
bumps their version, so an occurrence fired for the old date is cancelled (or dropped at
send time if it was already batched) and never goes out. A done or deleted task retires
its rules. Snooze follows RFC 9074's shape: one child occurrence per parent.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scheduler.errors import NotFound
from tests.integration.rules_support import (
    add_rule,
    occurrences,
    outbox,
    stored_rule,
    task,
    world,
)

T0 = datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
DUE = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
NEW_DUE = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=61)  # past the default 60 s batch window


def relative_rule(app: Any, schedule: dict[str, Any] | None = None) -> None:
    add_rule(app, schedule or {"kind": "relative", "offset": "-PT30M"}, now=T0)


def test_a_due_date_change_replans_the_rule_in_the_same_transaction(make_app: Any) -> None:
    app = make_app(T0)
    world(app, due_at=DUE, now=T0)
    relative_rule(app)
    assert stored_rule(app).next_fire_at == DUE - timedelta(minutes=30)

    task(app, "t1", due_at=NEW_DUE, now=T0 + timedelta(hours=1))

    rule = stored_rule(app)
    assert rule.next_fire_at == NEW_DUE - timedelta(minutes=30)
    assert rule.version == 2
    assert app.pipeline.fire(DUE).fired == 0  # nothing left at the old instant
    assert app.pipeline.fire(NEW_DUE - timedelta(minutes=30)).fired == 1


def test_on_the_due_day_at_a_local_time_follows_the_due_date(make_app: Any) -> None:
    app = make_app(T0)
    world(app, timezone="America/New_York", due_at=DUE, now=T0)
    relative_rule(app, {"kind": "relative", "on_due_day_at": "09:00"})
    # 2026-03-10 is after the spring change: 09:00 EDT is 13:00Z.
    assert stored_rule(app).next_fire_at == datetime(2026, 3, 10, 13, tzinfo=UTC)

    # 03:00Z on 03-12 is still 03-11 (23:00 EDT) in New York.
    task(app, "t1", due_at=datetime(2026, 3, 12, 3, tzinfo=UTC), now=T0)

    assert stored_rule(app).next_fire_at == datetime(2026, 3, 11, 13, tzinfo=UTC)


def test_a_due_date_moved_into_the_past_does_not_fire_late(make_app: Any) -> None:
    app = make_app(T0)
    world(app, due_at=DUE, now=T0)
    relative_rule(app)

    task(app, "t1", due_at=T0 - timedelta(days=1), now=T0)

    assert stored_rule(app).next_fire_at is None
    assert app.tick(T0 + timedelta(days=3))["fired"] == 0


def test_a_fired_occurrence_of_the_old_due_date_is_cancelled_and_never_sent(
    make_app: Any,
) -> None:
    app = make_app(T0)
    world(app, due_at=DUE, now=T0)
    relative_rule(app)
    old_instant = DUE - timedelta(minutes=30)
    assert app.pipeline.fire(old_instant).fired == 1  # fired, not yet decided

    task(app, "t1", due_at=NEW_DUE, now=old_instant)

    [stale] = occurrences(app)
    assert (stale.status, stale.reason) == ("cancelled", "the task's due date changed")
    app.tick(old_instant + timedelta(minutes=1))
    app.tick(old_instant + timedelta(minutes=3))
    assert outbox(app) == []

    new_instant = NEW_DUE - timedelta(minutes=30)
    app.tick(new_instant)
    app.tick(new_instant + WINDOW)
    assert len(outbox(app)) == 1
    assert [o.status for o in occurrences(app)] == ["cancelled", "sent"]


def test_an_already_batched_occurrence_is_dropped_at_send_time(make_app: Any) -> None:
    """Version check before sending: the rule changed after the item joined a batch."""
    app = make_app(T0)
    world(app, due_at=DUE, now=T0)
    relative_rule(app)
    old_instant = DUE - timedelta(minutes=30)
    assert app.tick(old_instant)["batched"] == 1  # waiting in its batch window

    task(app, "t1", due_at=NEW_DUE, now=old_instant + timedelta(seconds=10))
    app.tick(old_instant + WINDOW)

    assert outbox(app) == []
    [stale] = occurrences(app)
    assert stale.status in {"dropped", "cancelled"}
    assert stale.reason and "rule changed" in stale.reason


@pytest.mark.parametrize("status", ["done", "deleted"])
def test_a_finished_task_retires_its_rules_and_cancels_what_fired(
    make_app: Any, status: str
) -> None:
    app = make_app(T0)
    world(app, due_at=DUE, now=T0)
    relative_rule(app)
    add_rule(
        app,
        {"kind": "recurring", "rrule": "FREQ=DAILY", "start": "2026-03-09T12:00"},
        rule_id="rule-daily",
        now=T0,
    )
    app.pipeline.fire(datetime(2026, 3, 9, 12, tzinfo=UTC))  # the daily rule fired once

    task(app, "t1", due_at=DUE, status=status, now=datetime(2026, 3, 9, 12, 1, tzinfo=UTC))

    for rule_id in ("rule-1", "rule-daily"):
        rule = stored_rule(app, rule_id)
        assert (rule.active, rule.next_fire_at) == (False, None)
    [fired] = occurrences(app)
    assert (fired.status, fired.reason) == ("cancelled", f"the task is {status}")
    app.tick(DUE)
    app.tick(DUE + timedelta(days=2))
    assert outbox(app) == []


# --- snooze ------------------------------------------------------------------------------


def sent_once_rule(app: Any) -> tuple[int, datetime]:
    """A once rule fired and sent at 09:00; returns its occurrence id and send time."""
    at = datetime(2026, 3, 9, 9, tzinfo=UTC)
    world(app, due_at=DUE, now=T0)
    add_rule(app, {"kind": "once", "at": at.isoformat()}, now=T0)
    app.tick(at)
    app.tick(at + WINDOW)
    [occ] = occurrences(app)
    assert occ.status == "sent" and occ.id is not None
    return occ.id, at + WINDOW


def test_a_snoozed_occurrence_fires_once_more_then(make_app: Any) -> None:
    app = make_app(T0)
    parent, sent_at = sent_once_rule(app)

    child = app.rules.snooze(parent, {"minutes": 30}, now=sent_at)

    wake = sent_at + timedelta(minutes=30)
    assert (child.status, child.fire_at, child.snoozed_from) == ("snoozed", wake, parent)
    app.tick(wake - timedelta(seconds=1))
    assert len(outbox(app)) == 1
    app.tick(wake)
    app.tick(wake + WINDOW)
    assert len(outbox(app)) == 2
    app.tick(wake + timedelta(hours=2))
    assert len(outbox(app)) == 2
    assert [o.status for o in occurrences(app)] == ["sent", "sent"]


def test_a_double_snooze_snoozes_once(make_app: Any) -> None:
    app = make_app(T0)
    parent, sent_at = sent_once_rule(app)

    first = app.rules.snooze(parent, {"minutes": 30}, now=sent_at)
    second = app.rules.snooze(parent, {"minutes": 45}, now=sent_at + timedelta(seconds=2))

    assert second.id == first.id and second.fire_at == first.fire_at
    for minutes in (30, 45, 90):
        app.tick(sent_at + timedelta(minutes=minutes))
        app.tick(sent_at + timedelta(minutes=minutes) + WINDOW)
    assert len(outbox(app)) == 2
    assert len(occurrences(app)) == 2


def test_a_snooze_of_an_unknown_occurrence_is_not_found(make_app: Any) -> None:
    app = make_app(T0)
    world(app, now=T0)
    with pytest.raises(NotFound):
        app.rules.snooze(999, {"minutes": 5}, now=T0)


def test_a_snooze_is_cancelled_when_the_task_is_done(make_app: Any) -> None:
    app = make_app(T0)
    parent, sent_at = sent_once_rule(app)
    app.rules.snooze(parent, {"minutes": 30}, now=sent_at)

    task(app, "t1", due_at=DUE, status="done", now=sent_at + timedelta(minutes=5))
    app.tick(sent_at + timedelta(minutes=30))
    app.tick(sent_at + timedelta(minutes=30) + WINDOW)

    assert len(outbox(app)) == 1
    assert occurrences(app)[-1].status == "cancelled"
