"""explain() and ``reminders explain`` on both dialects: recorded and predicted occurrences
with the deciding layer, range limits, and the CLI's table, JSON and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler.app import App
from scheduler.errors import InvalidInput, NotFound
from scheduler.preferences.explain import explain
from tests.conftest import Database
from tests.integration.preferences_support import EMAIL, T0, add_rule, prefs_app, register

FIRE = T0 + timedelta(hours=1)
WEEK = T0 + timedelta(days=7)


@pytest.fixture
def app(db: Database, tmp_path: Path) -> App:
    built = prefs_app(db, tmp_path)
    register(built)
    add_rule(built, FIRE, rule_id="a-once")
    built.rules.create(
        {
            "id": "b-daily",
            "recipient_id": "r1",
            "task_id": "t1",
            "schedule": {
                "kind": "recurring",
                "rrule": "FREQ=DAILY;COUNT=3",
                "start": "2026-03-03T09:00",
                "timezone": "UTC",
            },
        },
        now=T0,
    )
    return built


def _explain(app: App, *, now: datetime = T0, start: datetime = T0, end: datetime = WEEK) -> list:
    return explain(app.sessions, "r1", start=start, end=end, now=now)


def test_predicts_every_instant_that_would_fire(app: App) -> None:
    items = _explain(app)
    assert [(i.rule_id, i.fire_at) for i in items] == [
        ("a-once", FIRE),
        ("b-daily", datetime(2026, 3, 3, 9, tzinfo=UTC)),
        ("b-daily", datetime(2026, 3, 4, 9, tzinfo=UTC)),
        ("b-daily", datetime(2026, 3, 5, 9, tzinfo=UTC)),
    ]
    assert {(i.decision, i.layer, i.status) for i in items} == {("send", None, None)}
    assert items[0].send_at == FIRE


def test_names_the_topic_layer_after_a_topic_unsubscribe(app: App) -> None:
    app.preferences.unsubscribe("r1", "topic", topic="task-reminder", now=T0)
    items = _explain(app)
    assert {(i.decision, i.layer) for i in items} == {("blocked", "topic")}
    assert all(i.send_at is None for i in items)


def test_names_suppression_after_a_complaint(app: App) -> None:
    app.preferences.suppress(EMAIL, "complaint", now=T0)
    assert {i.layer for i in _explain(app)} == {"suppression"}


def test_a_soft_bounce_block_expires_inside_the_range(app: App) -> None:
    app.preferences.suppress(
        EMAIL, "soft_bounce", now=T0, expires_at=datetime(2026, 3, 4, 0, tzinfo=UTC)
    )
    layers = [i.layer for i in _explain(app)]
    assert layers == ["suppression", "suppression", None, None]


def test_quiet_hours_are_predicted_with_their_end(db: Database, tmp_path: Path) -> None:
    app = prefs_app(db, tmp_path)
    register(app, quiet=("08:30", "10:00"))
    add_rule(app, FIRE, rule_id="q")
    (item,) = explain(app.sessions, "r1", start=T0, end=WEEK, now=T0)
    assert (item.decision, item.layer) == ("deferred", "quiet_hours")
    assert item.send_at == datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_recorded_occurrences_keep_their_stored_decision(app: App) -> None:
    app.preferences.unsubscribe("r1", "topic", topic="task-reminder", now=T0)
    app.pipeline.tick(FIRE)
    # Resubscribing now changes the future, not what was decided at FIRE.
    app.preferences.resubscribe("r1", "topic", topic="task-reminder", now=FIRE)
    items = _explain(app, now=FIRE)
    assert (items[0].rule_id, items[0].status, items[0].layer) == ("a-once", "blocked", "topic")
    assert {i.layer for i in items[1:]} == {None}


def test_recorded_sent_and_range_from_the_past(app: App) -> None:
    app.pipeline.tick(FIRE)
    items = _explain(app, now=FIRE + timedelta(minutes=5), start=T0 - timedelta(days=1))
    first = items[0]
    assert (first.rule_id, first.status, first.decision, first.layer) == (
        "a-once",
        "sent",
        "send",
        None,
    )
    assert first.send_at == FIRE


def test_deleted_account_shows_cancelled_mail_and_predicts_nothing(
    db: Database, tmp_path: Path
) -> None:
    from scheduler.preferences.deletion import delete_account

    app = prefs_app(db, tmp_path, batch_window=60)
    register(app)
    add_rule(app, FIRE, rule_id="a-once")
    add_rule(app, FIRE + timedelta(days=1), rule_id="b-later")
    app.pipeline.tick(FIRE)  # a-once waits in a collecting batch
    delete_account(app.sessions, "r1", now=FIRE)
    (item,) = explain(app.sessions, "r1", start=T0, end=WEEK, now=FIRE)
    assert (item.rule_id, item.status, item.decision) == ("a-once", "cancelled", "blocked")
    assert item.reason == "the account was deleted"


@pytest.mark.parametrize(
    ("start", "end", "field"),
    [
        (T0, T0, "to"),
        (T0, T0 - timedelta(days=1), "to"),
        (T0, T0 + timedelta(days=91), "to"),
        (datetime(2026, 3, 2), WEEK, "from"),
    ],
)
def test_bad_ranges_are_refused(app: App, start: datetime, end: datetime, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        explain(app.sessions, "r1", start=start, end=end, now=T0)
    assert caught.value.field == field


def test_unknown_recipient_is_not_found(app: App) -> None:
    with pytest.raises(NotFound):
        explain(app.sessions, "nobody", start=T0, end=WEEK, now=T0)


# --- the CLI ---------------------------------------------------------------------------


def _cli(
    app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """Run ``reminders explain`` in-process against ``app`` (its clock says T0)."""
    from scheduler import cli

    monkeypatch.setattr(cli, "load_app", lambda **_: app)
    monkeypatch.setattr(sys, "argv", ["reminders", "explain", *args])
    with pytest.raises(SystemExit) as caught:
        cli.main()
    out = capsys.readouterr()
    return int(caught.value.code or 0), out.out, out.err


def test_cli_prints_the_deciding_layer(
    app: App, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app.preferences.unsubscribe("r1", "topic", topic="task-reminder", now=T0)
    code, out, err = _cli(app, monkeypatch, capsys, "--recipient", "r1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["fire_at", "rule_id", "decision", "layer", "send_at", "reason"]
    assert len(lines) == 5
    assert all(line.split()[2:4] == ["blocked", "topic"] for line in lines[1:])

    app.preferences.suppress(EMAIL, "complaint", now=T0)
    code, out, err = _cli(
        app,
        monkeypatch,
        capsys,
        "--recipient",
        "r1",
        "--from",
        "2026-03-02T08:00:00Z",
        "--to",
        "2026-03-03T08:00:00Z",
        "--json",
    )
    assert code == 0, err
    assert "example" not in out.lower()
    (item,) = json.loads(out)["items"]
    assert item == {
        "rule_id": "a-once",
        "fire_at": "2026-03-02T09:00:00Z",
        "decision": "blocked",
        "layer": "suppression",
        "reason": item["reason"],
        "send_at": None,
        "status": None,
    }


@pytest.mark.parametrize(
    "args",
    [
        ("--recipient", "r1", "--from", "2026-03-02T08:00:00"),
        ("--recipient", "r1", "--from", "yesterday"),
        ("--recipient", "r1", "--from", "2026-03-02T08:00:00Z", "--to", "2026-12-02T08:00:00Z"),
        ("--recipient", "nobody"),
    ],
)
def test_cli_exits_2_on_bad_input(
    app: App,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: tuple[str, ...],
) -> None:
    code, _out, err = _cli(app, monkeypatch, capsys, *args)
    assert code == 2
    assert err.startswith("error:")
    assert len(err.strip().splitlines()) == 1


def test_cli_is_registered_in_the_real_entry_point(db: Database, tmp_path: Path) -> None:
    env = {
        **os.environ,
        **db.env(),
        "REMINDERS_SIGNING_KEYS": "test-key-0123456789abcdef",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "scheduler", "explain", "--recipient", "nobody"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "nobody" in result.stderr
