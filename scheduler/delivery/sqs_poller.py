"""Read SES events from an SQS queue (an SNS topic subscribed to it, or raw delivery).

Long polling (``WaitTimeSeconds`` 20, the SQS maximum) keeps an idle poller to three
requests a minute: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html

A message is deleted only after its event was ingested (committed) or found to carry no
event (SES's validation notice, an SNS confirmation). If the process dies in between, SQS
delivers the message again and ingestion, idempotent on the event id, ignores it.

Poison messages (a body that is no SES event at all) are not deleted on sight: they are
logged (by SQS message id and receive count, never the body, which holds addresses) and
left for the queue's redrive policy. A queue without a redrive policy would return such a
message forever, so once ``ApproximateReceiveCount`` reaches ``max_receives`` the poller
keeps the body itself (an ``ses_event`` row of kind ``unparseable``, for an operator to
read) and then deletes the message: nothing is lost and the queue cannot clog.

Database trouble is not poison: the message stays, the error propagates, and the caller
(the CLI, the worker's loop) decides when to try again.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from scheduler.delivery.ses_events import EventParseError, parse_sqs_body
from scheduler.delivery.ses_ingest import EventIngestor
from scheduler.errors import PeerError

log = logging.getLogger(__name__)

LONG_POLL_SECONDS = 20  # the SQS maximum
MAX_MESSAGES = 10  # the SQS maximum per ReceiveMessage
MAX_RECEIVES = 5
ERROR_BACKOFF_SECONDS = 5.0


@dataclass
class PollReport:
    received: int = 0
    ingested: int = 0
    duplicates: int = 0
    ignored: int = 0  # no event inside (validation notice, SNS confirmation)
    poison: int = 0  # unparseable, left on the queue
    quarantined: int = 0  # unparseable too often: kept in ses_event, deleted from SQS
    deleted: int = 0
    receipts: list[str] = field(default_factory=list, repr=False)

    def add(self, other: PollReport) -> None:
        for name in (
            "received",
            "ingested",
            "duplicates",
            "ignored",
            "poison",
            "quarantined",
            "deleted",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if k != "receipts"}


class SqsPoller:
    """Polls one queue; ``client`` is a boto3 SQS client (made by the composition root)."""

    def __init__(
        self,
        client: Any,
        queue_url: str,
        ingestor: EventIngestor,
        *,
        now: Callable[[], datetime],
        wait_seconds: int = LONG_POLL_SECONDS,
        max_receives: int = MAX_RECEIVES,
    ) -> None:
        if not 0 <= wait_seconds <= LONG_POLL_SECONDS:
            raise ValueError("wait_seconds must be between 0 and 20")
        if max_receives < 1:
            raise ValueError("max_receives must be at least 1")
        self._client = client
        self._queue_url = queue_url
        self._ingestor = ingestor
        self._now = now
        self._wait = wait_seconds
        self._max_receives = max_receives

    def poll_once(self) -> PollReport:
        """One ReceiveMessage (long poll), every message handled, the handled ones deleted."""
        report = PollReport()
        messages = self._receive()
        report.received = len(messages)
        try:
            for message in messages:
                self._handle(message, report)
        finally:
            # Whatever was handled before an error is deleted; the rest comes back.
            self._delete(report)
        return report

    def drain(self) -> PollReport:
        """Poll until a receive comes back empty (``reminders events poll --once``)."""
        total = PollReport()
        while True:
            report = self.poll_once()
            total.add(report)
            if report.received == 0:
                return total

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set (the worker); errors are logged and retried."""
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("polling SES events failed; retrying")
                stop.wait(ERROR_BACKOFF_SECONDS)

    def _receive(self) -> list[dict[str, Any]]:
        try:
            response = self._client.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=MAX_MESSAGES,
                WaitTimeSeconds=self._wait,
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except (ClientError, BotoCoreError) as error:
            raise PeerError(f"SQS ReceiveMessage failed: {_describe(error)}") from None
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _handle(self, message: dict[str, Any], report: PollReport) -> None:
        body = str(message.get("Body", ""))
        sqs_id = str(message.get("MessageId", "?"))
        now = self._now()
        try:
            event = parse_sqs_body(body, received_at=now)
        except EventParseError as error:
            self._poison(message, sqs_id, body, error, report)
            return
        if event is None:
            report.ignored += 1
        else:
            result = self._ingestor.ingest(event, now=now)
            if result.duplicate:
                report.duplicates += 1
            else:
                report.ingested += 1
        report.receipts.append(str(message["ReceiptHandle"]))

    def _poison(
        self,
        message: dict[str, Any],
        sqs_id: str,
        body: str,
        error: EventParseError,
        report: PollReport,
    ) -> None:
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        if receives < self._max_receives:
            log.error(
                "SQS message %s (receive %d) is no SES event (%s); left for redrive",
                sqs_id,
                receives,
                error.message,
            )
            report.poison += 1
            return
        digest = hashlib.sha256(body.encode("utf-8")).hexdigest()[:40]
        self._ingestor.store_unparseable(f"sqs-{digest}", body, now=self._now())
        log.error(
            "SQS message %s is no SES event after %d receives (%s); kept as ses_event "
            "sqs-%s and deleted",
            sqs_id,
            receives,
            error.message,
            digest,
        )
        report.quarantined += 1
        report.receipts.append(str(message["ReceiptHandle"]))

    def _delete(self, report: PollReport) -> None:
        receipts, report.receipts = report.receipts, []
        if not receipts:
            return
        entries = [{"Id": str(n), "ReceiptHandle": handle} for n, handle in enumerate(receipts)]
        try:
            response = self._client.delete_message_batch(QueueUrl=self._queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as error:
            # Not fatal: the messages come back after the visibility timeout and are
            # recognised as replays.
            log.error("SQS DeleteMessageBatch failed: %s", _describe(error))
            return
        failed = response.get("Failed", [])
        for entry in failed:
            log.error("SQS could not delete a message: %s", entry.get("Code", "?"))
        report.deleted += len(entries) - len(failed)


def _describe(error: Exception) -> str:
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "error"))
    return type(error).__name__
