"""PreferenceStore on SQLite and PostgreSQL: the §13 shape, upserts, resubscribe rules,
suppression writers."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import col

from scheduler.app import App
from scheduler.errors import InvalidInput, NotFound
from scheduler.preferences.suppression import SOFT_BOUNCE_COOLOFF, email_hash
from scheduler.tables import Preference, Suppression
from tests.conftest import Database
from tests.integration.preferences_support import EMAIL, T0, prefs_app, register


@pytest.fixture
def app(db: Database, tmp_path: Path) -> App:
    built = prefs_app(db, tmp_path)
    register(built)
    return built


def _rows(app: App, model: type) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_get_starts_empty(app: App) -> None:
    assert app.preferences.get("r1") == {
        "email_enabled": None,
        "topics": {},
        "workspaces": {},
        "tasks": {},
        "blocks": [],
    }


def test_get_unknown_recipient_is_not_found(app: App) -> None:
    with pytest.raises(NotFound):
        app.preferences.get("nobody")


def test_patch_sets_and_null_removes(app: App) -> None:
    got = app.preferences.patch(
        "r1",
        {
            "email_enabled": True,
            "topics": {"workspace-digest": False},
            "workspaces": {"w1": False},
            "tasks": {"t1": True},
        },
        now=T0,
    )
    assert got["email_enabled"] is True
    assert got["topics"] == {"workspace-digest": False}
    assert got["workspaces"] == {"w1": False}
    assert got["tasks"] == {"t1": True}
    # Absent keys are untouched; null removes.
    got = app.preferences.patch("r1", {"workspaces": {"w1": None}}, now=T0 + timedelta(1))
    assert got["workspaces"] == {}
    assert got["email_enabled"] is True
    assert got["topics"] == {"workspace-digest": False}
    got = app.preferences.patch("r1", {"email_enabled": None}, now=T0)
    assert got["email_enabled"] is None
    assert _rows(app, Preference) == 2


def test_patch_twice_is_an_upsert(app: App) -> None:
    app.preferences.patch("r1", {"topics": {"task-reminder": False}}, now=T0)
    app.preferences.patch("r1", {"topics": {"task-reminder": True}}, now=T0, source="page")
    assert _rows(app, Preference) == 1
    with app.sessions() as session:
        row = session.scalars(select(Preference)).one()
    assert (row.email_enabled, row.source) == (True, "page")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"topics": {"foo": False}}, "topics.foo"),
        ({"colour": "red"}, "colour"),
        ({"email_enabled": "yes"}, "email_enabled"),
        ({"tasks": {"t1": 1}}, "tasks.t1"),
        ({"workspaces": {"bad id!": False}}, "workspaces.bad id!"),
    ],
)
def test_patch_refuses_bad_input_naming_the_field(app: App, body: object, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        app.preferences.patch("r1", body, now=T0)
    assert caught.value.field is not None
    assert caught.value.field.startswith(field.split(".")[0])
    if field == "topics.foo":
        assert caught.value.field == "topics.foo"
    assert _rows(app, Preference) == 0


def test_patch_is_one_transaction(app: App) -> None:
    # The valid part is not written when another part is refused.
    with pytest.raises(InvalidInput):
        app.preferences.patch("r1", {"tasks": {"t1": False}, "topics": {"nope": True}}, now=T0)
    assert app.preferences.get("r1")["tasks"] == {}


def test_unsubscribe_scopes_and_idempotence(app: App) -> None:
    prefs = app.preferences
    for _ in range(2):
        prefs.unsubscribe("r1", "topic", topic="task-reminder", now=T0)
        prefs.unsubscribe("r1", "task", task_id="t1", now=T0)
        prefs.unsubscribe("r1", "workspace", workspace_id="w1", now=T0)
        got = prefs.unsubscribe("r1", "all", now=T0)
    assert got["email_enabled"] is False
    assert got["topics"] == {"task-reminder": False}
    assert got["tasks"] == {"t1": False}
    assert got["workspaces"] == {"w1": False}
    assert _rows(app, Preference) == 4
    got = prefs.resubscribe("r1", "topic", topic="task-reminder", now=T0)
    assert got["topics"] == {"task-reminder": True}


def test_unsubscribe_needs_its_target(app: App) -> None:
    with pytest.raises(InvalidInput) as caught:
        app.preferences.unsubscribe("r1", "task", now=T0)
    assert caught.value.field == "task_id"
    with pytest.raises(InvalidInput) as caught:
        app.preferences.unsubscribe("r1", "topic", topic="nope", now=T0)
    assert caught.value.field == "topic"
    with pytest.raises(InvalidInput):
        app.preferences.unsubscribe("r1", "everything", now=T0)  # type: ignore[arg-type]


def test_resubscribe_clears_unsubscribe_all_but_never_a_bounce_or_complaint(app: App) -> None:
    prefs = app.preferences
    for reason in ("unsubscribe_all", "complaint", "hard_bounce", "manual"):
        prefs.suppress(" ann@example.COM ", reason, now=T0, source_event=f"ev-{reason}")
    prefs.suppress(EMAIL, "soft_bounce", now=T0, expires_at=T0 + timedelta(days=3))
    before = {b["reason"] for b in prefs.get("r1", now=T0)["blocks"]}
    assert before == {"unsubscribe_all", "complaint", "hard_bounce", "manual", "soft_bounce"}
    after = prefs.patch("r1", {"email_enabled": True}, now=T0)
    assert {b["reason"] for b in after["blocks"]} == before - {"unsubscribe_all"}
    prefs.suppress(EMAIL, "unsubscribe_all", now=T0)
    after = prefs.resubscribe("r1", "all", now=T0)
    assert {b["reason"] for b in after["blocks"]} == before - {"unsubscribe_all"}


def test_blocks_never_carry_the_address(app: App) -> None:
    app.preferences.suppress(EMAIL, "hard_bounce", now=T0, detail=f"550 {EMAIL} unknown")
    blocks = app.preferences.get("r1")["blocks"]
    assert blocks == [
        {
            "reason": "hard_bounce",
            "layer": "suppression",
            "since": T0,
            "until": None,
            "clears_on_resubscribe": False,
        }
    ]
    assert "example" not in repr(blocks).lower()


def test_suppress_is_an_upsert_and_permanent_wins(app: App) -> None:
    prefs = app.preferences
    prefs.suppress(EMAIL, "manual", now=T0, expires_at=T0 + timedelta(days=1))
    prefs.suppress(EMAIL, "manual", now=T0, expires_at=T0 + timedelta(days=5))
    prefs.suppress(EMAIL, "manual", now=T0, expires_at=T0 + timedelta(days=2))
    (block,) = prefs.get("r1")["blocks"]
    assert block["until"] == T0 + timedelta(days=5)
    prefs.suppress(EMAIL, "manual", now=T0)
    (block,) = prefs.get("r1")["blocks"]
    assert block["until"] is None
    prefs.suppress(EMAIL, "manual", now=T0, expires_at=T0 + timedelta(days=9))
    assert prefs.get("r1")["blocks"][0]["until"] is None
    assert _rows(app, Suppression) == 1
    with app.sessions() as session:
        row = session.scalars(select(Suppression)).one()
    assert row.email_hash == email_hash("ann@example.com")


def test_lapsed_block_restarts(app: App) -> None:
    prefs = app.preferences
    prefs.suppress(EMAIL, "soft_bounce", now=T0, expires_at=T0 + timedelta(days=1))
    later = T0 + timedelta(days=3)
    assert prefs.get("r1", now=later)["blocks"] == []
    prefs.suppress(EMAIL, "soft_bounce", now=later, expires_at=later + timedelta(days=1))
    (block,) = prefs.get("r1", now=later)["blocks"]
    assert (block["since"], block["until"]) == (later, later + timedelta(days=1))


def test_suppress_refuses_an_unknown_reason(app: App) -> None:
    with pytest.raises(InvalidInput):
        app.preferences.suppress(EMAIL, "because", now=T0)


def test_transient_bounces_reach_the_limit_once_and_replay_is_idempotent(app: App) -> None:
    prefs = app.preferences
    t1, t2, t3 = T0, T0 + timedelta(days=2), T0 + timedelta(days=6)
    assert prefs.record_transient_bounce(EMAIL, at=t1, event_id="b1") is None
    assert prefs.record_transient_bounce(EMAIL, at=t2, event_id="b2") is None
    assert prefs.record_transient_bounce(EMAIL, at=t2, event_id="b2") is None  # replay
    expiry = prefs.record_transient_bounce(EMAIL, at=t3, event_id="b3")
    assert expiry == t3 + SOFT_BOUNCE_COOLOFF
    assert prefs.record_transient_bounce(EMAIL, at=t3, event_id="b3") == expiry
    (block,) = prefs.get("r1", now=t3)["blocks"]
    assert (block["reason"], block["until"]) == ("soft_bounce", expiry)
    assert prefs.get("r1", now=expiry)["blocks"] == []


def test_spread_out_transient_bounces_do_not_suppress(app: App) -> None:
    for day in (0, 8, 16, 24):
        at = T0 + timedelta(days=day)
        assert app.preferences.record_transient_bounce(EMAIL, at=at, event_id=f"s{day}") is None
    assert app.preferences.get("r1")["blocks"] == []


def test_manual_block_lift_touches_nothing_else(app: App) -> None:
    prefs = app.preferences
    prefs.suppress(EMAIL, "complaint", now=T0)
    prefs.suppress_manual(EMAIL, now=T0, detail="ticket 42", actor="ops@timeplan")
    assert prefs.lift_manual(EMAIL, now=T0) is True
    assert prefs.lift_manual(EMAIL, now=T0) is False
    assert [b["reason"] for b in prefs.get("r1")["blocks"]] == ["complaint"]
    with app.sessions() as session:
        reasons = list(session.scalars(select(col(Suppression.reason))))
    assert reasons == ["complaint"]
