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
