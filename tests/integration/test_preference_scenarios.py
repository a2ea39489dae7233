"""Preferences through the real pipeline (fire → decide → batch → send) on both dialects:
every layer blocks with its name recorded, quiet hours defer then send, and the send-time
re-check lets a late unsubscribe or a finished task win."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.app import App
from tests.conftest import Database
from tests.integration.preferences_support import (
    EMAIL,
    T0,
    add_rule,
    messages,
    occurrence,
    outbox,
    prefs_app,
    register,
)

FIRE = T0 + timedelta(hours=1)


@pytest.fixture
def app(db: Database, tmp_path: Path) -> App:
    built = prefs_app(db, tmp_path)
    register(built)
    add_rule(built, FIRE, rule_id="rule-1")
    return built


def test_an_allowed_reminder_is_sent(app: App) -> None:
    app.pipeline.tick(FIRE)
    occ = occurrence(app, "rule-1")
    assert (occ.status, occ.layer) == ("sent", None)
    assert len(outbox(app)) == 1


@pytest.mark.parametrize(
    ("change", "layer"),
    [
        (
            lambda a: a.preferences.unsubscribe("r1", "topic", topic="task-reminder", now=T0),
            "topic",
        ),
        (lambda a: a.preferences.suppress(EMAIL.upper(), "complaint", now=T0), "suppression"),
        (lambda a: a.preferences.suppress(EMAIL, "hard_bounce", now=T0), "suppression"),
        (
            lambda a: (
                a.preferences.record_transient_bounce(EMAIL, at=T0, event_id="x")
                or [
                    a.preferences.record_transient_bounce(
                        EMAIL, at=T0 + timedelta(minutes=i), event_id=f"x{i}"
                    )
                    for i in (1, 2)
                ]
            ),
            "suppression",
        ),
        (lambda a: a.preferences.suppress_manual(EMAIL, now=T0), "suppression"),
        (lambda a: a.preferences.unsubscribe("r1", "all", now=T0), "global"),
        (lambda a: a.preferences.suppress(EMAIL, "unsubscribe_all", now=T0), "global"),
        (lambda a: a.preferences.patch("r1", {"workspaces": {"w1": False}}, now=T0), "workspace"),
        (lambda a: a.preferences.unsubscribe("r1", "task", task_id="t1", now=T0), "task"),
    ],
    ids=[
        "topic",
        "complaint",
        "hard-bounce",
        "soft-bounce-limit",
        "manual",
        "global-off",
        "unsubscribe-all",
        "workspace-off",
        "task-off",
    ],
)
def test_each_layer_blocks_and_is_recorded(app: App, change: object, layer: str) -> None:
    change(app)  # type: ignore[operator]
    app.pipeline.tick(FIRE)
    occ = occurrence(app, "rule-1")
    assert (occ.status, occ.layer) == ("blocked", layer)
    assert occ.reason
    assert "example" not in occ.reason.lower()  # never the address
    assert outbox(app) == []
    assert messages(app) == []


def test_more_specific_yes_never_overrides_a_broader_no(app: App) -> None:
    app.preferences.patch(
        "r1",
        {"email_enabled": False, "topics": {"task-reminder": True}, "tasks": {"t1": True}},
        now=T0,
    )
    app.pipeline.tick(FIRE)
    assert occurrence(app, "rule-1").layer == "global"


def test_quiet_hours_across_midnight_defer_then_send(db: Database, tmp_path: Path) -> None:
    app = prefs_app(db, tmp_path)
    # Berlin is UTC+1 on 2 March 2026: 23:30 local is 22:30Z, 07:00 local is 06:00Z.
    register(app, timezone="Europe/Berlin", quiet=("22:00", "07:00"))
    fire = datetime(2026, 3, 2, 22, 30, tzinfo=UTC)
    add_rule(app, fire, rule_id="late")
    app.pipeline.tick(fire)
    occ = occurrence(app, "late")
    assert (occ.status, occ.layer) == ("deferred", "quiet_hours")
    assert occ.ready_at == datetime(2026, 3, 3, 6, 0, tzinfo=UTC)
    app.pipeline.tick(datetime(2026, 3, 3, 5, 59, tzinfo=UTC))
    assert outbox(app) == []
    app.pipeline.tick(datetime(2026, 3, 3, 6, 0, tzinfo=UTC))
    occ = occurrence(app, "late")
    assert (occ.status, occ.layer) == ("sent", "quiet_hours")
    assert len(outbox(app)) == 1


@pytest.mark.parametrize(
    ("quiet", "fire", "window_end"),
    [
        # Spring forward (2026-03-08): 02:30 does not exist in New York; RFC 5545 reads it
        # with the offset before the gap (EST), so the window ends at 07:30Z = 03:30 EDT.
        (
            ("01:00", "02:30"),
            datetime(2026, 3, 8, 6, 30, tzinfo=UTC),
            datetime(2026, 3, 8, 7, 30, tzinfo=UTC),
        ),
        # Fall back (2026-11-01): 01:30 happens twice; the first (EDT, 05:30Z) ends it.
        (
            ("00:00", "01:30"),
            datetime(2026, 11, 1, 4, 45, tzinfo=UTC),
            datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
        ),
    ],
    ids=["spring-forward", "fall-back"],
)
def test_quiet_hours_on_dst_days(
    db: Database, tmp_path: Path, quiet: tuple[str, str], fire: datetime, window_end: datetime
) -> None:
    app = prefs_app(db, tmp_path)
    register(app, timezone="America/New_York", quiet=quiet, now=fire - timedelta(days=1))
    add_rule(app, fire, rule_id="dst", now=fire - timedelta(days=1))
    app.pipeline.tick(fire)
    occ = occurrence(app, "dst")
    assert (occ.status, occ.ready_at) == ("deferred", window_end)
    app.pipeline.tick(window_end - timedelta(seconds=1))
    assert outbox(app) == []
    app.pipeline.tick(window_end)
    assert occurrence(app, "dst").status == "sent"


@pytest.fixture
def batching_app(db: Database, tmp_path: Path) -> App:
    """A 60 s batch window, so an item waits in a collecting message after it fires."""
    built = prefs_app(db, tmp_path, batch_window=60)
    register(built)
    add_rule(built, FIRE, rule_id="rule-1")
    built.pipeline.tick(FIRE)
    assert occurrence(built, "rule-1").status == "batched"
    return built


def test_unsubscribe_between_fire_and_send_wins(batching_app: App) -> None:
    app = batching_app
    app.preferences.unsubscribe("r1", "topic", topic="task-reminder", now=FIRE)
    app.pipeline.tick(FIRE + timedelta(seconds=61))
    occ = occurrence(app, "rule-1")
    assert (occ.status, occ.layer) == ("dropped", "topic")
    (message,) = messages(app)
    assert message.status == "cancelled"
    assert outbox(app) == []


def test_complaint_between_fire_and_send_wins(batching_app: App) -> None:
    app = batching_app
    app.preferences.suppress(EMAIL, "complaint", now=FIRE, source_event="c1")
    app.pipeline.tick(FIRE + timedelta(seconds=61))
    assert occurrence(app, "rule-1").layer == "suppression"
    assert messages(app)[0].status == "cancelled"


def test_task_done_between_fire_and_send_drops_the_item(batching_app: App) -> None:
    app = batching_app
    app.directory.upsert_task(
        "t1", {"workspace_id": "w1", "title": "Renew the lease", "status": "done"}, now=FIRE
    )
    app.pipeline.tick(FIRE + timedelta(seconds=61))
    occ = occurrence(app, "rule-1")
    assert occ.status == "dropped"
    assert "done" in (occ.reason or "")
    assert messages(app)[0].status == "cancelled"
    assert outbox(app) == []


def test_unsubscribe_during_quiet_hours_wins_at_the_window_end(
    db: Database, tmp_path: Path
) -> None:
    app = prefs_app(db, tmp_path)
    register(app, timezone="UTC", quiet=("08:30", "10:00"))
    add_rule(app, FIRE, rule_id="q")  # 09:00Z, inside the window
    app.pipeline.tick(FIRE)
    assert occurrence(app, "q").status == "deferred"
    app.preferences.unsubscribe("r1", "all", now=FIRE)
    app.pipeline.tick(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))
    occ = occurrence(app, "q")
    assert (occ.status, occ.layer) == ("dropped", "global")
    assert outbox(app) == []
