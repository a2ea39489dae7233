"""The message state machine and at-least-once delivery, on SQLite and PostgreSQL.

queued → sending (leased) → sent | retry | failed | cancelled, driven through the real
composition root with a small fake sender that can fail on purpose. A "crash" is a sender
that raises ``ProcessKilled`` (a ``BaseException``, which the stage does not catch, just as
a killed process runs no handler): the lease stays, and the message goes out exactly once
more after the lease has expired.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from scheduler.delivery.senders import OutgoingEmail
from scheduler.errors import MessageRejected, SenderMisconfigured, Throttled
from scheduler.tables import Message, Occurrence

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
AT = T0 + timedelta(minutes=30)
LEASE = timedelta(seconds=60)


class ProcessKilled(BaseException):
    """The worker dies mid-send: no ``except Exception`` handler sees this."""


class FakeSender:
    """Records what it sends; ``failures`` are raised, in order, before anything is sent."""

    name = "fake"

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []
        self.failures: list[BaseException] = []
        self.during_send: Callable[[OutgoingEmail], None] | None = None

    def send(self, email: OutgoingEmail) -> str:
        if self.during_send is not None:
            self.during_send(email)
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(email)
        return f"fake-{len(self.sent)}"


@pytest.fixture
def world(make_app: Any) -> tuple[Any, FakeSender]:
    """An app whose one ``once`` rule has produced one queued message at ``AT``."""
    sender = FakeSender()
    app = make_app(T0, sender=sender, batch_window_seconds=0, lease_seconds=int(LEASE.seconds))
    app.pipeline.send_stage.rand = lambda: 0.5  # backoff is half its ceiling: predictable
    app.directory.upsert_recipient("r1", {"email": "ada@example.com"}, now=T0)
    app.directory.upsert_workspace("w1", {"name": "Launch"}, now=T0)
    app.directory.upsert_task(
        "t1", {"workspace_id": "w1", "title": "Ship it", "url": None, "due_at": None}, now=T0
    )
    app.rules.create(
        {
            "id": "rule-1",
            "recipient_id": "r1",
            "task_id": "t1",
            "topic": "task-reminder",
            "schedule": {"kind": "once", "at": AT.isoformat()},
        },
        now=T0,
    )
    app.pipeline.fire(AT)
    app.pipeline.decide(AT)
    app.pipeline.batch(AT)
    assert message(app).status == "queued"
    return app, sender


def message(app: Any) -> Message:
    with app.sessions() as session:
        row: Message = session.scalars(select(Message)).one()
        return row


def occurrence(app: Any) -> Occurrence:
    with app.sessions() as session:
        row: Occurrence = session.scalars(select(Occurrence)).one()
        return row


def test_queued_message_is_leased_while_sending_then_sent(world: tuple[Any, FakeSender]) -> None:
    app, sender = world
    seen: list[Message] = []
    sender.during_send = lambda _email: seen.append(message(app))

    report = app.pipeline.send(AT)

    assert (report.claimed, report.sent) == (1, 1)
    [during] = seen
    assert during.status == "sending"
    assert during.lease_until == AT + LEASE
    assert during.leased_by == app.pipeline.send_stage.worker_id
    assert during.attempts == 1
    after = message(app)
    assert after.status == "sent" and after.lease_until is None
    assert after.ses_message_id == "fake-1" and after.sent_at == AT
    assert occurrence(app).status == "sent"
    assert [email.to for email in sender.sent] == ["ada@example.com"]
    # Sent is final: another pass finds nothing to do.
    assert app.pipeline.send(AT + timedelta(hours=1)).claimed == 0


def test_throttled_send_is_retried_after_its_backoff(world: tuple[Any, FakeSender]) -> None:
    app, sender = world
    sender.failures.append(Throttled("Maximum sending rate exceeded."))

    report = app.pipeline.send(AT)

    assert (report.claimed, report.retried, report.sent) == (1, 1, 0)
    row = message(app)
    backoff = timedelta(seconds=2.5)  # attempt 1: ceiling 5 s, jitter fraction 0.5
    assert (row.status, row.attempts, row.lease_until) == ("retry", 1, None)
    assert row.next_attempt_at == AT + backoff
    assert row.error is not None and "rate exceeded" in row.error
    assert app.pipeline.send(AT + backoff - timedelta(milliseconds=1)).claimed == 0
    assert app.pipeline.send(AT + backoff).sent == 1
    row = message(app)
    assert (row.status, row.attempts, row.error) == ("sent", 2, None)
    assert len(sender.sent) == 1


def test_rejected_message_fails_and_is_not_retried(world: tuple[Any, FakeSender]) -> None:
    app, sender = world
    sender.failures.append(MessageRejected("Email address is not verified."))

    report = app.pipeline.send(AT)

    assert (report.failed, report.sent, report.retried) == (1, 0, 0)
    row = message(app)
    assert (row.status, row.lease_until) == ("failed", None)
    assert row.error is not None and "not verified" in row.error
    assert occurrence(app).status == "failed"
    assert app.pipeline.send(AT + timedelta(days=1)).claimed == 0
    assert sender.sent == []


def test_misconfigured_sender_releases_the_message_and_raises(
    world: tuple[Any, FakeSender],
) -> None:
    app, sender = world
    sender.failures.append(SenderMisconfigured("configuration set does not exist"))

    with pytest.raises(SenderMisconfigured):
        app.pipeline.send(AT)

    row = message(app)
    # Back in the queue as if never claimed: the attempt does not count against it.
    assert (row.status, row.attempts, row.lease_until) == ("queued", 0, None)
    assert app.pipeline.send(AT).sent == 1
    assert message(app).status == "sent"


def test_a_crash_mid_send_is_retried_once_after_the_lease(
    world: tuple[Any, FakeSender],
) -> None:
    app, sender = world
    sender.failures.append(ProcessKilled())

    with pytest.raises(ProcessKilled):
        app.pipeline.send(AT)

    orphan = message(app)
    assert (orphan.status, orphan.lease_until, orphan.attempts) == ("sending", AT + LEASE, 1)
    # Another worker inside the lease leaves it alone: the first might still be sending.
    assert app.pipeline.send(AT + LEASE - timedelta(seconds=1)).claimed == 0
    assert app.pipeline.send(AT + LEASE).claimed == 0  # lease_until is not yet *past*
    later = AT + LEASE + timedelta(seconds=1)
    assert app.pipeline.send(later).sent == 1
    assert app.pipeline.send(later + timedelta(minutes=5)).claimed == 0
    row = message(app)
    assert (row.status, row.attempts, row.sent_at) == ("sent", 2, later)
    assert len(sender.sent) == 1


def test_a_message_whose_items_were_all_dropped_is_cancelled(
    world: tuple[Any, FakeSender],
) -> None:
    app, sender = world
    # The recipient unsubscribes between batching and sending: the send-time re-check wins.
    app.preferences.unsubscribe("r1", "topic", topic="task-reminder", now=AT)

    report = app.pipeline.send(AT)

    assert (report.claimed, report.cancelled, report.sent) == (1, 1, 0)
    row = message(app)
    assert (row.status, row.lease_until) == ("cancelled", None)
    occ = occurrence(app)
    assert (occ.status, occ.layer) == ("dropped", "topic")
    assert sender.sent == []
    assert app.pipeline.send(AT + timedelta(days=1)).claimed == 0
