"""SES events into the database: AWS's sample payloads through ``EventIngestor.ingest`` on
SQLite and PostgreSQL; every effect applied once, and a replay changes nothing."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from scheduler.db import session_factory, transaction
from scheduler.delivery.ses_events import parse_ses_event
from scheduler.delivery.ses_ingest import EventIngestor, IngestResult, SoftBouncePolicy
from scheduler.preferences.suppression import email_hash
from scheduler.tables import Message, Preference, Recipient
from tests.conftest import Database

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ses"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
EXAMPLE_ID = "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000"
STREAM = "transactional"
TABLES = ("ses_event", "suppression", "transient_bounce", "message", "send_day", "preference")
ALL_FIXTURES = sorted(path.stem for path in FIXTURES.glob("*.json"))


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def recipient(rid: str, email: str) -> Recipient:
    return Recipient(id=rid, email=email, created_at=NOW, updated_at=NOW)


@pytest.fixture
def sessions(db: Database) -> sessionmaker[Session]:
    factory = session_factory(db.engine)
    with transaction(factory) as session:
        session.add_all(
            [
                recipient("r-1", "Recipient@Example.com"),
                recipient("r-jane", "jane@example.com"),
                recipient("r-richard", "richard@example.com"),
            ]
        )
        session.flush()
        for n, ses_id in enumerate(
            (EXAMPLE_ID, "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000")
        ):
            start = NOW + timedelta(minutes=n)
            session.add(
                Message(
                    recipient_id="r-1",
                    topic="task-reminder",
                    window_start=start,
                    window_end=start,
                    status="sent",
                    ses_message_id=ses_id,
                    created_at=NOW,
                    sent_at=NOW,
                )
            )
    return factory


@pytest.fixture
def ingestor(sessions: sessionmaker[Session]) -> EventIngestor:
    return EventIngestor(sessions, None, stream=STREAM)


def ingest(
    ingestor: EventIngestor, data: dict[str, Any], sns_id: str | None = None
) -> IngestResult:
    event = parse_ses_event(data, received_at=NOW, sns_message_id=sns_id)
    return ingestor.ingest(event, now=NOW)


def snapshot(sessions: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    with transaction(sessions) as session:
        return {
            table: sorted(
                (
                    tuple(str(v) for v in row)
                    for row in session.execute(text(f"SELECT * FROM {table}"))
                ),
            )
            for table in TABLES
        }


def rows(sessions: sessionmaker[Session], sql: str, **params: Any) -> list[Any]:
    with transaction(sessions) as session:
        return list(session.execute(text(sql), params).all())


def suppressions(sessions: sessionmaker[Session], email: str) -> dict[str, tuple[Any, ...]]:
    found = rows(
        sessions,
        "SELECT reason, detail, expires_at, source_event FROM suppression WHERE email_hash = :h",
        h=email_hash(email),
    )
    return {row[0]: tuple(row[1:]) for row in found}


def message_status(sessions: sessionmaker[Session]) -> tuple[str, str | None]:
    row = rows(
        sessions, "SELECT status, error FROM message WHERE ses_message_id = :m", m=EXAMPLE_ID
    )[0]
    return row[0], row[1]


def send_day(sessions: sessionmaker[Session], day: date) -> dict[str, int]:
    found = rows(
        sessions,
        "SELECT delivered, bounced, complained, rejected, sent FROM send_day "
        "WHERE stream = :s AND day = :d",
        s=STREAM,
        d=day,
    )
    if not found:
        return {}
    names = ("delivered", "bounced", "complained", "rejected", "sent")
    return {name: value for name, value in zip(names, found[0], strict=True) if value}


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_every_sample_is_stored_once_and_a_replay_changes_nothing(
    name: str, ingestor: EventIngestor, sessions: sessionmaker[Session]
) -> None:
    data = load(name)
    first = ingest(ingestor, data, sns_id=f"sns-{name}")
    assert first.stored
    stored = rows(
        sessions,
        "SELECT kind, ses_message_id, raw FROM ses_event WHERE event_id = :e",
        e=f"sns-{name}",
    )
    assert len(stored) == 1
    assert stored[0][0] == first.kind
    assert stored[0][1] == data["mail"]["messageId"]
    assert json.loads(stored[0][2]) == data
    after_first = snapshot(sessions)

    again = ingest(ingestor, data, sns_id=f"sns-{name}")
    assert again.duplicate
    assert again.applied == ()
    assert snapshot(sessions) == after_first


def test_permanent_bounce_suppresses_with_subtype_and_marks_the_message(
    ingestor: EventIngestor, sessions: sessionmaker[Session]
) -> None:
    result = ingest(ingestor, load("event-bounce"), sns_id="sns-1")
    assert result.applied == ("status:bounced", "suppress:hard_bounce", "count:bounced")
    assert suppressions(sessions, "recipient@example.com") == {
        "hard_bounce": ("General", None, "sns-1")
    }
    assert message_status(sessions)[0] == "bounced"
    # send_day counts on the day SES accepted the mail (mail.timestamp).
    assert send_day(sessions, date(2017, 8, 5)) == {"bounced": 1}


def test_complaint_suppresses_the_address_whatever_its_case(
    ingestor: EventIngestor, sessions: sessionmaker[Session]
) -> None:
    ingest(ingestor, load("event-complaint"), sns_id="sns-c")
    assert set(suppressions(sessions, "RECIPIENT@example.com")) == {"complaint"}
    assert message_status(sessions)[0] == "complained"
    assert send_day(sessions, date(2017, 8, 5)) == {"complained": 1}


def test_feedback_notifications_suppress_only_the_named_recipients(
    ingestor: EventIngestor, sessions: sessionmaker[Session]
) -> None:
    ingest(ingestor, load("notification-bounce-without-dsn"))
    ingest(ingestor, load("notification-complaint-with-feedback"))
    assert set(suppressions(sessions, "jane@example.com")) == {"hard_bounce"}
    assert set(suppressions(sessions, "richard@example.com")) == {"hard_bounce", "complaint"}
    assert suppressions(sessions, "mary@example.com") == {}


@pytest.mark.parametrize(
    ("name", "status", "error_start", "column"),
    [
        ("event-delivery", "delivered", "delivered", "delivered"),
        ("event-reject", "rejected", "rejected: Bad content", "rejected"),
        ("event-delivery-delay", "sent", "delivery_delayed: TransientCommunicationFailure", None),
        ("event-rendering-failure", "failed", "rendering_failed: Attribute", None),
    ],
)
def test_message_status_events(
    name: str,
    status: str,
    error_start: str,
    column: str | None,
    ingestor: EventIngestor,
    sessions: sessionmaker[Session],
) -> None:
    data = load(name)
    ingest(ingestor, data)
    current, error = message_status(sessions)
    assert current == status
    assert (error or "").startswith(error_start)
    day = datetime.fromisoformat(data["mail"]["timestamp"]).date()
    assert send_day(sessions, day) == ({column: 1} if column else {})


def test_a_late_delivery_never_overwrites_a_bounce(
    ingestor: EventIngestor, sessions: sessionmaker[Session]
) -> None:
    ingest(ingestor, load("event-bounce"))
    result = ingest(ingestor, load("event-delivery"))
    assert "status:delivered:kept" in result.applied
    assert message_status(sessions)[0] == "bounced"


def test_on_account_suppression_list_records_the_row_without_counting(
    ingestor: EventIngestor, sessions: sessionmaker[Session]
) -> None:
    data = load("event-bounce")
    data["bounce"]["bounceSubType"] = "OnAccountSuppressionList"
    ingest(ingestor, data)
    assert suppressions(sessions, "recipient@example.com")["hard_bounce"][0] == (
        "OnAccountSuppressionList"
    )
    assert send_day(sessions, date(2017, 8, 5)) == {}


def test_a_second_hard_bounce_keeps_one_row_and_counts_twice(
    ingestor: EventIngestor, sessions: sessionmaker[Session]
) -> None:
    ingest(ingestor, load("event-bounce"), sns_id="first")
    ingest(ingestor, load("event-bounce"), sns_id="second")
    rows_now = suppressions(sessions, "recipient@example.com")
    assert list(rows_now) == ["hard_bounce"]
    assert rows_now["hard_bounce"][1] is None  # still permanent
    assert send_day(sessions, date(2017, 8, 5)) == {"bounced": 2}


def transient(at: datetime) -> dict[str, Any]:
    data = copy.deepcopy(load("event-bounce"))
    data["bounce"].update(
        bounceType="Transient",
        bounceSubType="MailboxFull",
        timestamp=at.isoformat().replace("+00:00", "Z"),
    )
    data["mail"]["timestamp"] = data["bounce"]["timestamp"]
    return data


def test_repeated_transient_bounces_suppress_for_a_cool_off(
    sessions: sessionmaker[Session],
) -> None:
    policy = SoftBouncePolicy(limit=3, window=timedelta(days=7), cooloff=timedelta(days=14))
    ingestor = EventIngestor(sessions, None, stream=STREAM, soft_bounces=policy)
    first = NOW - timedelta(days=3)
    results = [
        ingest(ingestor, transient(first + timedelta(days=i)), sns_id=f"t-{i}") for i in range(3)
    ]
    assert [r.applied[-1] for r in results] == [
        "soft_bounce:counted",
        "soft_bounce:counted",
        "soft_bounce:suppressed",
    ]
    detail, expires_at, source = suppressions(sessions, "recipient@example.com")["soft_bounce"]
    assert (detail, source) == ("3 transient bounces within 7 days", "t-2")
    expected = first + timedelta(days=2) + timedelta(days=14)
    assert datetime.fromisoformat(str(expires_at)).replace(tzinfo=UTC) == expected
    # Transient bounces do not count toward SES's bounce rate, nor ours.
    assert rows(sessions, "SELECT count(*) FROM send_day WHERE bounced > 0")[0][0] == 0
    assert message_status(sessions)[0] == "bounced"


def test_subscription_event_turns_reminder_email_off_for_that_address(
    ingestor: EventIngestor, sessions: sessionmaker[Session]
) -> None:
    result = ingest(ingestor, load("event-subscription"))
    # unsubscribeAll → global off; "ExampleTopicName" is no topic of ours: ignored.
    assert result.applied == ("preferences:1x1",)
    assert rows(
        sessions, "SELECT recipient_id, scope, scope_id, email_enabled, source FROM preference"
    ) == [("r-1", "global", "", False, "ses_subscription")]


def test_subscription_event_sets_our_topics_and_never_overwrites_a_newer_choice(
    ingestor: EventIngestor, sessions: sessionmaker[Session]
) -> None:
    with transaction(sessions) as session:
        session.add(
            Preference(
                recipient_id="r-1",
                scope="topic",
                scope_id="task-reminder",
                email_enabled=True,
                source="api",
                updated_at=NOW,
            )
        )
    data = load("event-subscription")
    data["subscription"]["newTopicPreferences"] = {
        "unsubscribeAll": False,
        "topicSubscriptionStatus": [
            {"topicName": "task-reminder", "subscriptionStatus": "OptOut"},
            {"topicName": "workspace-digest", "subscriptionStatus": "OptOut"},
        ],
    }
    ingest(ingestor, data)  # the event is from 2022: older than the API's choice
    assert sorted(rows(sessions, "SELECT scope_id, email_enabled, source FROM preference")) == [
        ("task-reminder", True, "api"),
        ("workspace-digest", False, "ses_subscription"),
    ]


def test_unknown_event_types_are_stored_and_not_fatal(
    ingestor: EventIngestor, sessions: sessionmaker[Session]
) -> None:
    data = load("event-send")
    data["eventType"] = "SomethingNew"
    result = ingest(ingestor, data, sns_id="new-1")
    assert (result.kind, result.stored, result.applied) == ("unknown", True, ())
    assert rows(sessions, "SELECT kind FROM ses_event WHERE event_id = 'new-1'") == [("unknown",)]


def test_events_for_messages_we_do_not_know_still_count(
    ingestor: EventIngestor, sessions: sessionmaker[Session]
) -> None:
    data = load("event-delivery")
    data["mail"]["messageId"] = "not-ours"
    result = ingest(ingestor, data)
    assert result.applied == ("status:no_message", "count:delivered")
    assert message_status(sessions)[0] == "sent"


def test_a_failing_effect_stores_nothing(
    ingestor: EventIngestor, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(sessions)

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr("scheduler.delivery.send_day.increment", broken)
    with pytest.raises(RuntimeError):
        ingest(ingestor, load("event-complaint"), sns_id="c-1")
    assert snapshot(sessions) == before
