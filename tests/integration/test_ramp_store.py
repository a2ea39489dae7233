"""The ramp store on both dialects: grants bounded by the daily limit and the pacing
window, pause, audit, the daily evaluation, and expiry of the backlog past its lateness."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.db import session_factory, transaction
from scheduler.delivery.ramp import RampStore
from scheduler.delivery.ramp_policy import Quota, RampAction, RampConfig, RampMode
from scheduler.errors import Conflict, InvalidInput
from scheduler.tables import Message, Occurrence, Ramp, RampChange, Recipient, ReminderRule, SendDay
from tests.conftest import Database

NOW = datetime(2025, 3, 10, 9, 0, 0, tzinfo=UTC)
STREAM = "transactional"


@pytest.fixture
def sessions(db: Database) -> sessionmaker[Session]:
    return session_factory(db.engine)


@pytest.fixture
def store(sessions: sessionmaker[Session]) -> RampStore:
    return RampStore(sessions, RampConfig(), stream=STREAM)


def grant(store: RampStore, requested: int, now: datetime = NOW) -> int:
    with transaction(store._sessions) as session:
        return store.grant(session, requested, now)


def ramp_row(sessions: sessionmaker[Session]) -> Ramp:
    with sessions() as session:
        row = session.get(Ramp, STREAM)
        assert row is not None
        return row


def granted_on(sessions: sessionmaker[Session], day: date) -> int:
    with sessions() as session:
        row = session.get(SendDay, (STREAM, day))
        return row.granted if row is not None else 0


def changes(sessions: sessionmaker[Session]) -> list[RampChange]:
    with sessions() as session:
        return list(session.scalars(select(RampChange).order_by(RampChange.id)))  # type: ignore[arg-type]


# --- creation ------------------------------------------------------------------------


def test_ensure_creates_the_first_step_once_and_audits_it(
    store: RampStore, sessions: sessionmaker[Session]
) -> None:
    state = store.ensure(NOW)
    store.ensure(NOW)
    assert (state.mode, state.daily_limit, state.step) == (RampMode.AUTO, 200, 0)
    [created] = changes(sessions)
    assert (created.actor, created.old, created.new["daily_limit"]) == ("system", {}, 200)


def test_a_new_stream_starts_inside_the_ses_quota(sessions: sessionmaker[Session]) -> None:
    store = RampStore(sessions, RampConfig(), quota=lambda: Quota(max_24h=100, max_rate=1))
    assert store.ensure(NOW).daily_limit == 100


def test_grant_creates_the_row_when_missing(
    store: RampStore, sessions: sessionmaker[Session]
) -> None:
    assert grant(store, 1) == 1
    assert ramp_row(sessions).daily_limit == 200


# --- grants ----------------------------------------------------------------------------


def test_grants_stop_exactly_at_the_daily_limit(
    store: RampStore, sessions: sessionmaker[Session]
) -> None:
    store.set_manual(10, 1000, "test the limit", "test", NOW)
    got = [grant(store, 3, NOW + timedelta(seconds=i)) for i in range(6)]
    assert got == [3, 3, 3, 1, 0, 0]
    assert granted_on(sessions, NOW.date()) == 10
    # A new UTC day starts a new count.
    assert grant(store, 3, NOW + timedelta(days=1)) == 3


def test_grants_stop_at_the_per_second_rate(
    store: RampStore, sessions: sessionmaker[Session]
) -> None:
    store.set_manual(1000, 5, "test the rate", "test", NOW)
    assert [grant(store, 3) for _ in range(3)] == [3, 2, 0]
    assert ramp_row(sessions).second_count == 5
    assert grant(store, 10, NOW + timedelta(seconds=1)) == 5
    # Refused requests are handed back: the day counts what was granted, not asked.
    assert granted_on(sessions, NOW.date()) == 10


def test_a_rate_under_one_per_second_uses_a_longer_window(store: RampStore) -> None:
    store.set_manual(1000, 0.5, "slow", "test", NOW)  # one send per 2-second window
    start = NOW.replace(second=0)  # epoch-aligned: an even second
    got = [grant(store, 2, start + timedelta(seconds=i)) for i in range(4)]
    assert got == [1, 0, 1, 0]


def test_a_limit_lowered_below_todays_use_grants_nothing(
    store: RampStore, sessions: sessionmaker[Session]
) -> None:
    store.set_manual(10, 100, "open", "test", NOW)
    assert grant(store, 8) == 8
    store.set_manual(5, None, "tighten", "test", NOW)
    assert grant(store, 3, NOW + timedelta(seconds=1)) == 0
    assert granted_on(sessions, NOW.date()) == 8


def test_paused_grants_nothing_and_counts_nothing(
    store: RampStore, sessions: sessionmaker[Session]
) -> None:
    store.pause("incident", "test", NOW)
    assert grant(store, 5) == 0
    assert granted_on(sessions, NOW.date()) == 0
    store.resume("test", NOW, "incident over")
    assert grant(store, 5) == 1  # the first step's 1/s


# --- operator changes and the audit ------------------------------------------------


def test_every_change_is_audited_with_who_when_old_new_and_why(
    store: RampStore, sessions: sessionmaker[Session]
) -> None:
    store.set_manual(3000, 2.5, "launch week", "cli:ada", NOW)
    store.pause("bounce spike", "key:abc", NOW + timedelta(minutes=1))
    store.resume("cli:ada", NOW + timedelta(minutes=2), "list cleaned")
    store.auto("cli:ada", NOW + timedelta(minutes=3), "back to the policy")
    _created, manual, paused, resumed, auto = changes(sessions)
    assert (manual.actor, manual.reason, manual.at) == ("cli:ada", "launch week", NOW)
    assert manual.old["mode"] == "auto"
    assert manual.new == {
        "mode": "manual",
        "daily_limit": 3000,
        "rate_per_second": 2.5,
        "step": 3,
        "reason": "launch week",
    }
    assert (paused.old["mode"], paused.new["mode"], paused.actor) == ("manual", "paused", "key:abc")
    # Resume restores the mode from before the pause.
    assert (resumed.new["mode"], resumed.new["daily_limit"]) == ("manual", 3000)
    assert auto.new == {
        "mode": "auto",
        "daily_limit": 3000,
        "rate_per_second": 1.0,
        "step": 3,
        "reason": "back to the policy",
    }
    history = store.history(limit=2)
    assert [h.reason for h in history] == ["back to the policy", "list cleaned"]


@pytest.mark.parametrize(
    ("daily", "rate", "reason", "field"),
    [
        (-1, None, "why", "daily_limit"),
        (500, None, "why", "daily_limit"),  # above the SES quota of 400
        (100, 0, "why", "rate_per_second"),
        (100, 20, "why", "rate_per_second"),  # above MaxSendRate 14
        (100, None, "  ", "reason"),
    ],
)
def test_invalid_manual_changes_are_refused_and_change_nothing(
    sessions: sessionmaker[Session], daily: int, rate: float | None, reason: str, field: str
) -> None:
    store = RampStore(sessions, RampConfig(), quota=lambda: Quota(max_24h=400, max_rate=14))
    store.ensure(NOW)
    with pytest.raises(InvalidInput) as caught:
        store.set_manual(daily, rate, reason, "test", NOW)
    assert caught.value.field == field
    assert len(changes(sessions)) == 1
    assert ramp_row(sessions).mode == "auto"


def test_reason_is_required_everywhere_and_resume_needs_a_pause(store: RampStore) -> None:
    for change in (
        lambda: store.pause("", "t", NOW),
        lambda: store.resume("t", NOW, " "),
        lambda: store.auto("t", NOW, ""),
    ):
        with pytest.raises(InvalidInput, match="reason"):
            change()
    with pytest.raises(Conflict):
        store.resume("t", NOW, "not paused")


def test_ses_sending_paused_pauses_the_stream_once(
    store: RampStore, sessions: sessionmaker[Session]
) -> None:
    store.ensure(NOW)
    store.on_stream_paused("Sending paused for this account", NOW)
    store.on_stream_paused("Sending paused for this account", NOW)
    row = ramp_row(sessions)
    assert (row.mode, row.reason) == ("paused", "SES: Sending paused for this account")
    assert [c.actor for c in changes(sessions)] == ["system", "ses"]


# --- the daily evaluation ---------------------------------------------------------


def add_day(
    sessions: sessionmaker[Session], day: date, sent: int, bounced: int = 0, complained: int = 0
) -> None:
    with transaction(sessions) as session:
        session.add(
            SendDay(
                stream=STREAM,
                day=day,
                granted=sent,
                sent=sent,
                delivered=sent - bounced,
                bounced=bounced,
                complained=complained,
            )
        )


def test_evaluate_day_grows_on_a_clean_day_once_per_day(
    store: RampStore, sessions: sessionmaker[Session]
) -> None:
    store.ensure(NOW - timedelta(days=1))
    add_day(sessions, NOW.date() - timedelta(days=1), sent=180)
    first = store.evaluate_day(NOW)
    again = store.evaluate_day(NOW + timedelta(hours=1))
    assert (first.action, first.state.daily_limit) == (RampAction.GROW, 500)
    assert (again.action, again.state.daily_limit) == (RampAction.NONE, 500)
    row = ramp_row(sessions)
    assert (row.daily_limit, row.step, row.evaluated_day) == (500, 1, NOW.date())
    assert [c.actor for c in changes(sessions)] == ["system", "ramp:auto"]
    # The next day is evaluated again (no figures: hold, nothing changes, nothing audited).
    assert store.evaluate_day(NOW + timedelta(days=1)).action is RampAction.HOLD
    assert len(changes(sessions)) == 2


def test_evaluate_day_pauses_at_the_ses_review_threshold(
    store: RampStore, sessions: sessionmaker[Session]
) -> None:
    store.ensure(NOW)
    add_day(sessions, NOW.date() - timedelta(days=1), sent=200, bounced=10)
    decision = store.evaluate_day(NOW)
    assert decision.action is RampAction.PAUSE
    assert ramp_row(sessions).mode == "paused"
    assert "review threshold" in changes(sessions)[-1].reason


def test_show_reports_the_state_today_and_the_last_days(
    store: RampStore, sessions: sessionmaker[Session]
) -> None:
    add_day(sessions, NOW.date() - timedelta(days=1), sent=100, bounced=1)
    add_day(sessions, NOW.date() - timedelta(days=20), sent=100)  # outside the window
    assert grant(store, 1) == 1
    view = store.show(NOW)
    assert (view.mode, view.daily_limit, view.used_today, view.steps) == ("auto", 200, 1, 12)
    assert [d.day for d in view.days] == [NOW.date(), NOW.date() - timedelta(days=1)]
    assert view.days[1].bounce_rate == pytest.approx(0.01)
    assert view.next_step.startswith("auto at 200/day")


# --- the backlog past its lateness ---------------------------------------------------


def queue_message(
    session: Session,
    n: int,
    *,
    topic: str,
    due_at: datetime,
    status: str = "queued",
    essential: bool = False,
) -> int:
    rule_id = f"r{n}"
    if session.get(Recipient, "ada") is None:
        session.add(Recipient(id="ada", email="ada@example.com", created_at=NOW, updated_at=NOW))
        session.flush()
    session.add(
        ReminderRule(
            id=rule_id, recipient_id="ada", topic=topic, schedule={}, created_at=NOW, updated_at=NOW
        )
    )
    message = Message(
        recipient_id="ada",
        topic=topic,
        window_start=due_at,
        window_end=due_at,
        status=status,
        essential=essential,
        item_count=1,
        due_at=due_at,
        next_attempt_at=due_at,
        created_at=NOW,
    )
    session.add(message)
    session.flush()
    session.add(
        Occurrence(
            rule_id=rule_id,
            recipient_id="ada",
            topic=topic,
            fire_at=due_at,
            status="batched",
            message_id=message.id,
            created_at=NOW,
        )
    )
    assert message.id is not None
    return message.id


def test_expire_waiting_expires_only_what_waited_past_its_topics_lateness(
    store: RampStore, sessions: sessionmaker[Session]
) -> None:
    hour, task = timedelta(hours=1), "task-reminder"
    with transaction(sessions) as session:
        late = queue_message(session, 1, topic=task, due_at=NOW - hour - timedelta(seconds=1))
        retry = queue_message(
            session, 2, topic="task-reminder", due_at=NOW - 2 * hour, status="retry"
        )
        on_time = queue_message(session, 3, topic="task-reminder", due_at=NOW - hour)
        digest = queue_message(session, 4, topic="workspace-digest", due_at=NOW - 2 * hour)
        sent = queue_message(
            session, 5, topic="task-reminder", due_at=NOW - 5 * hour, status="sent"
        )
    assert store.expire(NOW) == 2
    with sessions() as session:
        status = {m.id: m.status for m in session.scalars(select(Message))}
        occurrences = {o.message_id: o for o in session.scalars(select(Occurrence))}
    assert status == {
        late: "expired",
        retry: "expired",
        on_time: "queued",
        digest: "queued",
        sent: "sent",
    }
    expired = occurrences[late]
    assert (expired.status, expired.layer) == ("expired", "ramp")
    assert "max lateness of 1:00:00" in (expired.reason or "")
    assert occurrences[on_time].status == "batched"


# --- through the pipeline: priority, expiry and SES pausing the stream ----------------


class RecordingComposer:
    """Stands in for the composer: every message becomes a tiny email named by its id."""

    def compose(self, _session: Session, message: Message, _now: datetime) -> object:
        from scheduler.delivery.senders import OutgoingEmail

        return OutgoingEmail(
            ref=f"m{message.id}",
            to="ada@example.com",
            from_addr="support@timeplanpush.com",
            raw=b"Subject: hi\r\n\r\nhi",
        )


class RecordingSender:
    name = "recording"

    def __init__(self, fail_with: Exception | None = None) -> None:
        self.sent: list[str] = []
        self.fail_with = fail_with

    def send(self, email: object) -> str:
        if self.fail_with is not None:
            raise self.fail_with
        ref: str = email.ref  # type: ignore[attr-defined]
        self.sent.append(ref)
        return f"ses-{ref}"


def send_pipeline(sessions: sessionmaker[Session], store: RampStore, sender: object) -> object:
    pipeline = pytest.importorskip("scheduler.pipeline")  # needs the delivery modules
    send = pytest.importorskip("scheduler.delivery.send")
    stage = send.SendStage(
        sessions=sessions,
        sender=sender,
        composer=RecordingComposer(),
        worker_id="test",
        grant=store.grant,
        on_paused=store.on_stream_paused,
    )
    return pipeline.Pipeline(
        sessions=sessions,
        send_stage=stage,
        batch_window=timedelta(minutes=1),
        batch_max_items=10,
        expire_waiting=store.expire,
    )


def test_over_a_tight_limit_essential_then_earliest_due_go_first_and_late_ones_expire(
    store: RampStore, sessions: sessionmaker[Session]
) -> None:
    store.set_manual(3, 100, "tight", "test", NOW)
    task, minute = "task-reminder", timedelta(minutes=1)
    with transaction(sessions) as session:
        ids = {
            name: queue_message(
                session, n, topic=task, due_at=NOW - age * minute, essential=essential
            )
            for n, (name, age, essential) in enumerate(
                [
                    ("plain-30", 30, False),
                    ("essential-10", 10, True),
                    ("plain-50", 50, False),
                    ("essential-20", 20, True),
                    ("plain-5", 5, False),
                    ("too-late", 61, True),
                ]
            )
        }
    sender = RecordingSender()
    report = send_pipeline(sessions, store, sender).send(NOW)  # type: ignore[attr-defined]
    assert sender.sent == [f"m{ids[n]}" for n in ("essential-20", "essential-10", "plain-50")]
    assert report.sent == 3
    with sessions() as session:
        status = {m.id: m.status for m in session.scalars(select(Message))}
    assert status[ids["too-late"]] == "expired"
    assert status[ids["plain-30"]] == status[ids["plain-5"]] == "queued"
    assert granted_on(sessions, NOW.date()) == 3


def test_ses_sending_paused_through_the_send_stage_pauses_the_ramp(
    store: RampStore, sessions: sessionmaker[Session]
) -> None:
    from scheduler.errors import StreamPaused

    with transaction(sessions) as session:
        message_id = queue_message(session, 1, topic="task-reminder", due_at=NOW)
    sender = RecordingSender(fail_with=StreamPaused("Account sending paused"))
    report = send_pipeline(sessions, store, sender).send(NOW)  # type: ignore[attr-defined]
    assert report.paused
    row = ramp_row(sessions)
    assert (row.mode, row.reason) == ("paused", "SES: Account sending paused")
    assert changes(sessions)[-1].actor == "ses"
    with sessions() as session:
        assert session.get(Message, message_id).status == "retry"  # type: ignore[union-attr]
    assert grant(store, 1, NOW + timedelta(minutes=10)) == 0
