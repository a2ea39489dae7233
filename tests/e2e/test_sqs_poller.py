"""The SQS poller against moto's server over HTTP: SES events published to an SNS topic
that delivers to an SQS queue (the production wiring), then polled and ingested."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from scheduler.db import session_factory, transaction
from scheduler.delivery.ses import make_aws_client
from scheduler.delivery.ses_events import VALIDATION_NOTICE
from scheduler.delivery.ses_ingest import EventIngestor
from scheduler.delivery.sqs_poller import SqsPoller
from scheduler.preferences.suppression import email_hash
from tests.conftest import Database
from tests.moto_server import MOTO_REGION

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ses"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def fixture_text(name: str) -> str:
    return (FIXTURES / f"{name}.json").read_text()


class Wiring:
    """An SNS topic subscribed to an SQS queue in moto, and a poller on the queue."""

    def __init__(
        self, base_url: str, sessions: sessionmaker[Session], *, visibility: int = 30
    ) -> None:
        self.sns = make_aws_client("sns", MOTO_REGION, base_url)
        self.sqs = make_aws_client("sqs", MOTO_REGION, base_url)
        self.topic_arn = self.sns.create_topic(Name="timeplan-ses-events")["TopicArn"]
        self.queue_url = self.sqs.create_queue(
            QueueName="timeplan-ses-events", Attributes={"VisibilityTimeout": str(visibility)}
        )["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)
        self.ingestor = EventIngestor(sessions, None, stream="transactional")

    def poller(self, **options: Any) -> SqsPoller:
        return SqsPoller(
            self.sqs, self.queue_url, self.ingestor, now=lambda: NOW, wait_seconds=0, **options
        )

    def publish(self, message: str) -> None:
        self.sns.publish(TopicArn=self.topic_arn, Message=message)

    def send_raw(self, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)

    def queued(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


@pytest.fixture
def sessions(db: Database) -> sessionmaker[Session]:
    return session_factory(db.engine)


@pytest.fixture
def wiring(moto_reset: str, sessions: sessionmaker[Session]) -> Wiring:
    return Wiring(moto_reset, sessions)


def scalar(sessions: sessionmaker[Session], sql: str, **params: Any) -> Any:
    with transaction(sessions) as session:
        return session.execute(text(sql), params).scalar()


def suppressed(sessions: sessionmaker[Session], email: str) -> list[str]:
    with transaction(sessions) as session:
        return sorted(
            session.execute(
                text("SELECT reason FROM suppression WHERE email_hash = :h"),
                {"h": email_hash(email)},
            ).scalars()
        )


def test_a_complaint_through_sns_and_sqs_suppresses_the_address(
    wiring: Wiring, sessions: sessionmaker[Session]
) -> None:
    wiring.publish(fixture_text("event-complaint"))
    report = wiring.poller().drain()
    assert (report.received, report.ingested, report.deleted) == (1, 1, 1)
    assert suppressed(sessions, "recipient@example.com") == ["complaint"]
    assert wiring.queued() == 0
    # The event id is the SNS MessageId moto assigned (the envelope was unwrapped).
    event_id = scalar(sessions, "SELECT event_id FROM ses_event")
    assert not event_id.startswith("ses-")


def test_raw_bodies_notices_and_redeliveries(
    wiring: Wiring, sessions: sessionmaker[Session]
) -> None:
    wiring.send_raw(fixture_text("event-bounce"))  # raw message delivery: no SNS envelope
    wiring.send_raw(fixture_text("event-bounce"))  # SQS delivered it twice
    wiring.publish(VALIDATION_NOTICE)  # SES's notice when the destination was created
    report = wiring.poller().drain()
    assert (report.received, report.ingested, report.duplicates, report.ignored) == (3, 1, 1, 1)
    assert report.deleted == 3
    assert suppressed(sessions, "recipient@example.com") == ["hard_bounce"]
    assert scalar(sessions, "SELECT count(*) FROM ses_event") == 1
    assert wiring.queued() == 0


def test_poison_is_left_for_redrive_then_kept_and_deleted(
    moto_reset: str, sessions: sessionmaker[Session]
) -> None:
    # Visibility timeout 0: a message left on the queue comes back on the next receive,
    # as it would after its timeout, without the test waiting.
    wiring = Wiring(moto_reset, sessions, visibility=0)
    wiring.send_raw("this is not JSON")
    wiring.publish(fixture_text("event-delivery"))
    poller = wiring.poller(max_receives=2)

    first = poller.poll_once()
    assert (first.received, first.poison, first.ingested, first.deleted) == (2, 1, 1, 1)
    assert scalar(sessions, "SELECT count(*) FROM ses_event WHERE kind = 'unparseable'") == 0
    assert wiring.queued() == 1
    second = poller.poll_once()  # the second receive of the poison: quarantine
    assert (second.quarantined, second.deleted) == (1, 1)
    assert scalar(sessions, "SELECT raw FROM ses_event WHERE kind = 'unparseable'") == (
        "this is not JSON"
    )
    assert wiring.queued() == 0


def test_a_database_failure_deletes_nothing_unprocessed(
    moto_reset: str, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    wiring = Wiring(moto_reset, sessions, visibility=0)
    wiring.publish(fixture_text("event-complaint"))
    original: Callable[..., Any] = wiring.ingestor.ingest

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("database gone")

    monkeypatch.setattr(wiring.ingestor, "ingest", broken)
    with pytest.raises(RuntimeError):
        wiring.poller().poll_once()
    assert wiring.queued() == 1
    monkeypatch.setattr(wiring.ingestor, "ingest", original)
    assert wiring.poller().drain().ingested == 1
    assert suppressed(sessions, "recipient@example.com") == ["complaint"]


def test_unknown_queue_is_a_peer_error(wiring: Wiring) -> None:
    from scheduler.errors import PeerError

    poller = SqsPoller(
        wiring.sqs, wiring.queue_url + "-missing", wiring.ingestor, now=lambda: NOW, wait_seconds=0
    )
    with pytest.raises(PeerError, match="ReceiveMessage"):
        poller.poll_once()


def test_sns_envelope_is_what_moto_delivers(wiring: Wiring) -> None:
    """Guards the wiring itself: the queue holds SNS Notification envelopes."""
    wiring.publish(json.dumps({"eventType": "Send", "mail": {"messageId": "m"}}))
    body = json.loads(wiring.sqs.receive_message(QueueUrl=wiring.queue_url)["Messages"][0]["Body"])
    assert body["Type"] == "Notification"
    assert body["TopicArn"] == wiring.topic_arn
