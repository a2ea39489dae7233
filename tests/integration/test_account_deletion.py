"""Account deletion on both dialects: everything stops in one transaction, the address is
erased, a hashed tombstone stays, and complaints outlive the account."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from scheduler.app import App
from scheduler.errors import NotFound
from scheduler.preferences.deletion import delete_account, tombstone_scope
from scheduler.preferences.suppression import email_hash
from scheduler.tables import Preference, Recipient, ReminderRule, Suppression
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
LATER = T0 + timedelta(days=1)


@pytest.fixture
def app(db: Database, tmp_path: Path) -> App:
    built = prefs_app(db, tmp_path, batch_window=60)
    register(built)
    add_rule(built, FIRE, rule_id="fired")  # will sit in a collecting batch
    add_rule(built, LATER, rule_id="future")  # not fired yet
    built.preferences.patch("r1", {"topics": {"workspace-digest": False}}, now=T0)
    built.pipeline.tick(FIRE)
    assert occurrence(built, "fired").status == "batched"
    return built


def test_deletion_stops_everything_and_erases_the_address(app: App) -> None:
    report = delete_account(app.sessions, "r1", now=FIRE)
    assert (report.rules_cancelled, report.messages_cancelled, report.tombstone_written) == (
        2,
        1,
        True,
    )
    assert report.occurrences_cancelled == 1
    with app.sessions() as session:
        recipient = session.get(Recipient, "r1")
        assert recipient is not None
        assert (recipient.email, recipient.name, recipient.status) == (None, None, "deleted")
        assert recipient.deleted_at == FIRE
        rules = list(session.scalars(select(ReminderRule).order_by(ReminderRule.id)))
        assert [(r.active, r.next_fire_at, r.version) for r in rules] == [(False, None, 2)] * 2
        assert list(session.scalars(select(Preference))) == []
        (tombstone,) = session.scalars(select(Suppression))
    assert tombstone.reason == "account_deleted"
    assert tombstone.recipient_id == "r1"
    assert tombstone.email_hash == email_hash(EMAIL)
    assert tombstone.scope == tombstone_scope("r1")
    assert occurrence(app, "fired").status == "cancelled"
    assert messages(app)[0].status == "cancelled"
    # Nothing goes out afterwards, now or when the future rule would have fired.
    app.pipeline.tick(FIRE + timedelta(minutes=2))
    app.pipeline.tick(LATER)
    assert outbox(app) == []
    blocks = app.preferences.get("r1", now=LATER)["blocks"]
    assert [b["reason"] for b in blocks] == ["account_deleted"]


def test_deletion_is_idempotent(app: App) -> None:
    delete_account(app.sessions, "r1", now=FIRE)
    again = delete_account(app.sessions, "r1", now=LATER)
    assert (again.rules_cancelled, again.occurrences_cancelled, again.messages_cancelled) == (
        0,
        0,
        0,
    )
    assert again.tombstone_written is False
    with app.sessions() as session:
        recipient = session.get(Recipient, "r1")
        assert recipient is not None
        assert recipient.deleted_at == FIRE
        assert len(list(session.scalars(select(Suppression)))) == 1


def test_unknown_recipient_is_not_found(app: App) -> None:
    with pytest.raises(NotFound):
        delete_account(app.sessions, "nobody", now=FIRE)


@pytest.mark.parametrize("new_id", ["r1", "r2"])
def test_reregistration_is_blocked_while_a_complaint_stands(app: App, new_id: str) -> None:
    app.preferences.suppress(EMAIL, "complaint", now=T0, source_event="c1")
    delete_account(app.sessions, "r1", now=FIRE)
    register(app, recipient=new_id, email=f"  {EMAIL.lower()} ", task="t2", now=LATER)
    add_rule(
        app, LATER + timedelta(hours=1), rule_id="again", recipient=new_id, task="t2", now=LATER
    )
    app.pipeline.tick(LATER + timedelta(hours=1))
    occ = occurrence(app, "again")
    assert (occ.status, occ.layer) == ("blocked", "suppression")
    assert "complaint" in (occ.reason or "")
    # A resubscribe by the new account does not clear the complaint either.
    blocks = app.preferences.resubscribe(new_id, "all", now=LATER)["blocks"]
    assert "complaint" in {b["reason"] for b in blocks}


@pytest.mark.parametrize("new_id", ["r1", "r2"])
def test_reregistration_without_a_complaint_is_mailed(app: App, new_id: str) -> None:
    delete_account(app.sessions, "r1", now=FIRE)
    register(app, recipient=new_id, email=EMAIL, task="t2", now=LATER)
    add_rule(
        app, LATER + timedelta(hours=1), rule_id="again", recipient=new_id, task="t2", now=LATER
    )
    app.pipeline.tick(LATER + timedelta(hours=1))
    app.pipeline.tick(LATER + timedelta(hours=1, minutes=2))
    occ = occurrence(app, "again")
    assert (occ.status, occ.layer) == ("sent", None)
    assert len(outbox(app)) == 1
    # The old preferences went with the deleted account.
    assert app.preferences.get(new_id)["topics"] == {}
    # The tombstone is kept as history but is no longer in force.
    assert app.preferences.get(new_id, now=LATER)["blocks"] == []


def test_deleting_twice_after_reregistration_writes_a_fresh_tombstone(app: App) -> None:
    delete_account(app.sessions, "r1", now=FIRE)
    register(app, email=EMAIL, now=LATER)
    second = delete_account(app.sessions, "r1", now=LATER + timedelta(hours=1))
    assert second.tombstone_written
    (block,) = app.preferences.get("r1", now=LATER + timedelta(hours=2))["blocks"]
    assert (block["reason"], block["since"], block["until"]) == (
        "account_deleted",
        LATER + timedelta(hours=1),
        None,
    )
