"""The worker reads SES events from SQS when REMINDERS_SES_EVENTS_QUEUE_URL is set
(moto's server over HTTP; SNS topic → SQS queue, as in production)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from scheduler.delivery.ses import make_aws_client
from scheduler.worker import Worker
from tests.conftest import TEST_SIGNING_KEY
from tests.moto_server import MOTO_REGION

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "ses"
T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_the_worker_polls_the_queue_and_stops_cleanly(make_app: Any, moto_reset: str) -> None:
    sns = make_aws_client("sns", MOTO_REGION, moto_reset)
    sqs = make_aws_client("sqs", MOTO_REGION, moto_reset)
    topic = sns.create_topic(Name="timeplan-ses-events")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="timeplan-ses-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    sns.publish(TopicArn=topic, Message=(FIXTURES / "event-complaint.json").read_text())

    app = make_app(
        T0, ses_events_queue_url=queue_url, aws_endpoint_url=moto_reset, ses_region=MOTO_REGION
    )
    worker = Worker(app, interval=3600, events_wait_seconds=1)
    worker.start()
    try:
        waited = threading.Event()
        for _ in range(500):  # readiness poll of the worker's thread, at most ~5 s
            with app.sessions() as session:
                if session.execute(text("SELECT count(*) FROM suppression")).scalar_one():
                    break
            waited.wait(0.01)
        with app.sessions() as session:
            reason = session.execute(text("SELECT reason FROM suppression")).scalar_one()
        assert reason == "complaint"
    finally:
        worker.stop()
    assert worker.stopped.is_set()
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"


def test_events_poll_once_drains_the_queue(
    db: Any, moto_reset: str, monkeypatch: Any, tmp_path: Path
) -> None:
    import json

    from typer.testing import CliRunner

    from scheduler.cli import cli

    sqs = make_aws_client("sqs", MOTO_REGION, moto_reset)
    queue_url = sqs.create_queue(QueueName="timeplan-ses-events")["QueueUrl"]
    for name in ("event-complaint", "event-bounce"):
        sqs.send_message(QueueUrl=queue_url, MessageBody=(FIXTURES / f"{name}.json").read_text())
    env = db.env() | {
        "REMINDERS_SES_EVENTS_QUEUE_URL": queue_url,
        "REMINDERS_AWS_ENDPOINT_URL": moto_reset,
        "REMINDERS_SES_REGION": MOTO_REGION,
        "REMINDERS_SIGNING_KEYS": TEST_SIGNING_KEY,
        "REMINDERS_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, ["events", "poll", "--once", "--wait-seconds", "0"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert (report["received"], report["ingested"], report["deleted"]) == (2, 2, 2)
    with db.engine.connect() as conn:
        reasons = conn.execute(text("SELECT reason FROM suppression ORDER BY reason")).scalars()
        assert list(reasons) == ["complaint", "hard_bounce"]


def test_events_poll_needs_a_queue(db: Any, monkeypatch: Any) -> None:
    from typer.testing import CliRunner

    from scheduler.cli import Exit, cli

    for name, value in (db.env() | {"REMINDERS_SIGNING_KEYS": TEST_SIGNING_KEY}).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("REMINDERS_SES_EVENTS_QUEUE_URL", raising=False)
    result = CliRunner().invoke(cli, ["events", "poll", "--once"])
    assert isinstance(result.exception, Exit)
    assert result.exception.code == 2
    assert "REMINDERS_SES_EVENTS_QUEUE_URL" in str(result.exception)
