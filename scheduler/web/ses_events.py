"""``POST /ses/events``: SES events delivered by SNS over HTTPS (DESIGN §10).

No API key: SNS cannot send one. Each request is authenticated by its SNS signature, its
certificate URL and an allow-listed TopicArn (:class:`scheduler.delivery.sns.SnsVerifier`).
Whatever is refused gets a 4xx problem+json and nothing is stored; a peer or database
failure gets a 5xx so SNS delivers again (it retries 5xx answers, and ingestion is
idempotent on the SNS MessageId, so a retry or a replay answers 200 and changes nothing).

SNS waits about 15 s for an answer; verification and ingestion are one short transaction.
https://docs.aws.amazon.com/sns/latest/dg/SendMessageToHttp.prepare.html
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.concurrency import run_in_threadpool

from scheduler.delivery.ses_events import EventParseError, is_validation_notice, parse_ses_event
from scheduler.delivery.ses_ingest import EventIngestor
from scheduler.delivery.sns import (
    SnsEnvelope,
    SnsMessageType,
    SnsRejected,
    SnsVerifier,
    SubscriptionConfirmer,
    check_subscribe_url,
)
from scheduler.errors import PeerError
from scheduler.web.problems import PROBLEM_JSON, problem

if TYPE_CHECKING:
    from scheduler.app import App

log = logging.getLogger(__name__)

# SNS messages are at most 256 KiB; the JSON envelope adds escaping and signature fields.
MAX_BODY_BYTES = 512 * 1024


@dataclass(frozen=True)
class SesEventsEndpoint:
    """Everything the endpoint needs; ``verifier`` is None when no topic is configured."""

    verifier: SnsVerifier | None
    confirm: SubscriptionConfirmer
    ingestor: EventIngestor
    now: Callable[[], datetime]

    @classmethod
    def from_app(cls, app: App) -> SesEventsEndpoint:
        topics = app.settings.topic_arns
        verifier = (
            SnsVerifier(app.sns_certificate_fetcher, allowed_topic_arns=topics) if topics else None
        )
        return cls(verifier, app.sns_confirmer, app.ses_events, app.now)

    def handle(self, body: bytes, headers: Mapping[str, str]) -> Response:
        if self.verifier is None:
            return problem(
                503, "Not configured", "SES events over HTTPS need REMINDERS_SNS_TOPIC_ARNS"
            )
        try:
            SnsEnvelope.from_json(body)
        except SnsRejected as refused:
            return problem(400, "Bad request", refused.reason, field=refused.field)
        try:
            envelope = self.verifier.verify(body, headers)
        except SnsRejected as refused:
            log.warning("refused an SNS message: %s", refused.reason)
            return problem(403, "Forbidden", refused.reason, field=refused.field)
        return self._dispatch(envelope)

    def _dispatch(self, envelope: SnsEnvelope) -> Response:
        if envelope.type is SnsMessageType.SUBSCRIPTION_CONFIRMATION:
            return self._confirm(envelope)
        if envelope.type is SnsMessageType.UNSUBSCRIBE_CONFIRMATION:
            log.warning("SNS topic %s unsubscribed this endpoint", envelope.topic_arn)
            return _ok({"status": "unsubscribed"})
        if is_validation_notice(envelope.message):
            return _ok({"status": "ignored"})
        now = self.now()
        try:
            event = parse_ses_event(
                envelope.message, received_at=now, sns_message_id=envelope.message_id
            )
        except EventParseError as error:
            log.warning("SNS message %s holds no SES event: %s", envelope.message_id, error)
            return problem(400, "Bad request", f"not an SES event: {error}", field=error.field)
        try:
            result = self.ingestor.ingest(event, now=now)
        except OperationalError:
            log.exception(
                "database unavailable while ingesting SNS message %s", envelope.message_id
            )
            return problem(
                503,
                "Service unavailable",
                "database unavailable; retry later",
                headers={"Retry-After": "5"},
            )
        status = "duplicate" if result.duplicate else "stored"
        return _ok({"status": status, "event_id": result.event_id, "kind": result.kind})

    def _confirm(self, envelope: SnsEnvelope) -> Response:
        url = envelope.subscribe_url or ""
        try:
            check_subscribe_url(url)  # verify() checked it; confirming is a request we make
            self.confirm(url)
        except SnsRejected as refused:
            return problem(403, "Forbidden", refused.reason, field=refused.field)
        except PeerError as error:
            return problem(503, "Service unavailable", error.message, headers={"Retry-After": "5"})
        log.info("confirmed the SNS subscription to %s", envelope.topic_arn)
        return _ok({"status": "confirmed"})


def _ok(body: dict[str, str]) -> Response:
    return JSONResponse(body)


async def _read_body(request: Request) -> bytes | None:
    """The body, or None when it is larger than an SNS message can be."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def ses_events_router(app: App) -> APIRouter:
    """The router for ``create_web_app``; the verifier (and its certificate cache) lives here."""
    endpoint = SesEventsEndpoint.from_app(app)
    router = APIRouter(tags=["ses"])

    @router.post(
        "/ses/events",
        summary="SES events from Amazon SNS (signature-verified)",
        responses={code: {"content": {PROBLEM_JSON: {}}} for code in (400, 403, 413, 503)},
    )
    async def ses_events(request: Request) -> Response:
        body = await _read_body(request)
        if body is None:
            return problem(413, "Request body too large", "larger than any SNS message")
        return await run_in_threadpool(endpoint.handle, body, dict(request.headers))

    return router
