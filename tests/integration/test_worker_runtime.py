"""The worker's duties in one process, on both dialects: retention, lease reclaim and
release, stopping between batches, a failing stage, and the hot tables' autovacuum."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text

from scheduler.db import session_factory, transaction
from scheduler.retention import Retention
from scheduler.tables import Message, Occurrence, SesEvent, TransientBounce
from scheduler.worker import Worker
from tests.conftest import Database
from tests.integration.reliability_support import seed_due_reminders

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=31)
RECENT = NOW - timedelta(days=29)


def add_message(session: Any, n: int, *, status: str, at: datetime, **extra: Any) -> Message:
    message = Message(
        recipient_id=f"r{n}",
        topic="task-reminder",
        window_start=at + timedelta(microseconds=n),
        window_end=at + timedelta(microseconds=n),
        status=status,
        created_at=at,
        next_attempt_at=at,
        due_at=at,
        **extra,
    )
    session.add(message)
    session.flush()
    return message


def add_occurrence(session: Any, n: int, *, status: str, at: datetime, message_id: Any) -> None:
    session.add(
        Occurrence(
            rule_id=f"rule{n}",
            recipient_id=f"r{n}",
            topic="task-reminder",
            task_id="t1",
            fire_at=at,
            status=status,
            created_at=at,
            message_id=message_id,
        )
    )


def test_retention_deletes_only_final_history_past_the_cutoff(db: Database) -> None:
    seed_due_reminders(db.engine, 8, due=OLD)
    sessions = session_factory(db.engine)
    with transaction(sessions) as session:
        old_sent = add_message(session, 1, status="sent", at=OLD)
        add_occurrence(session, 1, status="sent", at=OLD, message_id=old_sent.id)
        add_occurrence(session, 2, status="blocked", at=OLD, message_id=None)
        add_occurrence(session, 3, status="expired", at=OLD, message_id=None)
        # Kept: recent history, work still in progress, and a message an item still needs.
        recent = add_message(session, 4, status="delivered", at=RECENT)
        add_occurrence(session, 4, status="sent", at=RECENT, message_id=recent.id)
        add_occurrence(session, 5, status="pending", at=OLD, message_id=None)
        queued = add_message(session, 6, status="retry", at=OLD)
        add_occurrence(session, 6, status="batched", at=OLD, message_id=queued.id)
        needed = add_message(session, 7, status="failed", at=OLD)
        add_occurrence(session, 7, status="deferred", at=OLD, message_id=needed.id)
        for n, at in ((1, OLD), (2, RECENT)):
            session.add(SesEvent(event_id=f"e{n}", kind="Delivery", raw="{}", received_at=at))
        # Soft-bounce evidence lives at least its 7-day window, whatever the retention.
        for n, days in ((1, 3), (2, 8)):
            at = NOW - timedelta(days=days)
            session.add(TransientBounce(email_hash="h", bounced_at=at, event_id=f"b{n}"))
    report = Retention(sessions, days=30, batch_size=2).run(NOW)
    assert report.deleted == {
        "occurrence": 3,
        "message": 1,
        "ses_event": 1,
        "transient_bounce": 0,
    }
    with sessions() as session:
        kept = {o.rule_id: o.status for o in session.scalars(select(Occurrence))}
        messages = {m.recipient_id for m in session.scalars(select(Message))}
        events = set(session.scalars(select(SesEvent.event_id)))
    assert kept == {"rule4": "sent", "rule5": "pending", "rule6": "batched", "rule7": "deferred"}
    assert messages == {"r4", "r6", "r7"}
    assert events == {"e2"}
    assert Retention(sessions, days=30).run(NOW).total == 0  # nothing left to do
    # Five days' retention still keeps soft-bounce evidence for its 7-day window.
    assert Retention(sessions, days=5).run(NOW).deleted["transient_bounce"] == 1
    with sessions() as session:
        assert set(session.scalars(select(TransientBounce.event_id))) == {"b1"}


def queued_messages(app: Any) -> None:
    """Fire, decide and batch as of NOW; the messages wait, queued, for the send stage."""
    app.pipeline.fire(NOW)
    app.pipeline.decide(NOW)
    app.pipeline.batch(NOW)


def test_an_expired_lease_of_a_dead_worker_is_claimed_again(make_app: Any, db: Database) -> None:
    seed_due_reminders(db.engine, 3, due=NOW - timedelta(minutes=1))
    app = make_app(NOW, batch_window_seconds=0)
    queued_messages(app)
    leases = {"r1": NOW + timedelta(seconds=60), "r2": NOW - timedelta(seconds=1)}
    with transaction(app.sessions) as session:
        for message in session.scalars(select(Message)):
            message.status = "sending" if message.recipient_id in leases else "sent"
            message.leased_by = "dead-host:1"
            message.lease_until = leases.get(message.recipient_id)
    assert app.pipeline.send(NOW).sent == 1  # r2: its lease ran out
    with app.sessions() as session:
        status = {m.recipient_id: (m.status, m.leased_by) for m in session.scalars(select(Message))}
    assert status["r1"] == ("sending", "dead-host:1")  # still leased: left alone
    assert status["r2"] == ("sent", app.pipeline.send_stage.worker_id)
    assert app.pipeline.send(NOW + timedelta(seconds=61)).sent == 1  # now r1's ran out too


def test_release_all_gives_back_only_this_workers_leases(make_app: Any, db: Database) -> None:
    seed_due_reminders(db.engine, 3, due=NOW - timedelta(minutes=1))
    app = make_app(NOW, batch_window_seconds=0)
    queued_messages(app)
    stage = app.pipeline.send_stage
    claimed = stage._claim(NOW, 2)
    with transaction(app.sessions) as session:
        session.execute(
            text(
                "UPDATE message SET status = 'sending', leased_by = 'other:2' "
                "WHERE status = 'queued'"
            )
        )
    assert len(claimed) == 2
    assert stage.release_all() == 2
    with app.sessions() as session:
        rows = sorted(
            (m.status, m.leased_by or "", m.attempts) for m in session.scalars(select(Message))
        )
    assert rows == [("queued", "", 0), ("queued", "", 0), ("sending", "other:2", 0)]


def test_a_stopping_worker_finishes_the_batch_in_hand_and_gives_back_the_rest(
    make_app: Any, db: Database
) -> None:
    seed_due_reminders(db.engine, 30, due=NOW - timedelta(minutes=1))
    app = make_app(NOW, batch_window_seconds=0, stage_batch_size=10)
    app.pipeline.stopping = lambda: True
    assert app.pipeline.fire(NOW).claimed == 10  # one batch of ten, then it stopped
    app.pipeline.stopping = lambda: False
    assert app.pipeline.fire(NOW).claimed == 20
    app.pipeline.decide(NOW)
    app.pipeline.batch(NOW)
    app.pipeline.send_stage.stopping = lambda: True
    report = app.pipeline.send_stage.run(now=NOW, limit=5)
    assert (report.claimed, report.sent) == (5, 1)  # the message in hand went out
    with app.sessions() as session:
        statuses = [(m.status, m.attempts) for m in session.scalars(select(Message))]
    assert statuses.count(("sent", 1)) == 1
    assert statuses.count(("queued", 0)) == 29  # the other four given back, uncounted


def test_a_failing_stage_is_logged_and_tried_again(
    make_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scheduler.worker")
    app = make_app(NOW)
    worker = Worker(app)
    calls: list[datetime] = []

    def flaky(now: datetime) -> None:
        calls.append(now)
        if len(calls) <= 2:
            raise ConnectionError("server closed the connection unexpectedly")

    run = worker._guarded("fire", flaky)
    for _ in range(3):
        run()  # never raises: the ticker must survive
    assert len(calls) == 3
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "stage fire failed; retrying on the next tick",
        "stage fire still failing: ConnectionError: server closed the connection unexpectedly",
        "stage fire recovered",
    ]
    assert caplog.records[0].exc_info is not None  # the first carries the traceback
    worker.request_stop()
    run()
    assert len(calls) == 3  # a stopping worker takes no new work


def test_hot_tables_have_aggressive_autovacuum_on_postgresql(pg: Database) -> None:
    with pg.engine.connect() as conn:
        options = dict(
            conn.execute(
                text(
                    "SELECT relname, reloptions FROM pg_class "
                    "WHERE relnamespace = CAST(current_schema() AS regnamespace) "
                    "AND relname IN ('occurrence', 'message', 'reminder_rule')"
                )
            ).all()
        )
    assert set(options) == {"occurrence", "message", "reminder_rule"}
    for reloptions in options.values():
        assert "autovacuum_vacuum_scale_factor=0.01" in reloptions
        assert "autovacuum_analyze_scale_factor=0.02" in reloptions
        assert "autovacuum_vacuum_cost_delay=2" in reloptions
