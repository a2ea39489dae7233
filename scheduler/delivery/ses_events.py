"""Parse Amazon SES event JSON into typed events (pure: no I/O, no clock).

Two producers, one shape:
- configuration-set *event publishing* writes ``eventType`` (Send, Reject, Bounce,
  Complaint, Delivery, DeliveryDelay, Rendering Failure, Subscription, Open, Click):
  https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html
- identity *feedback notifications* write ``notificationType`` (Bounce, Complaint,
  Delivery; also ``AmazonSnsSubscriptionSucceeded``, which parses as ``unknown``):
  https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html

AWS's parsing rules apply: fields may be added at any time (unknown keys are ignored),
events are neither ordered nor unique, and one event may name several recipients.
What an event *means* for the store is decided in :mod:`scheduler.delivery.ses_effects`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from scheduler.errors import InvalidInput

# SES publishes this plain-text message to the topic when an event destination is created;
# it is not an event and not JSON (anymail and moto both special-case the exact text).
VALIDATION_NOTICE = "Successfully validated SNS topic for Amazon SES event publishing."

ON_ACCOUNT_SUPPRESSION_LIST = "OnAccountSuppressionList"

_SNS_CONFIRMATIONS = frozenset({"SubscriptionConfirmation", "UnsubscribeConfirmation"})


class EventParseError(InvalidInput):
    """The body is not SES event JSON at all (not JSON, not an object, wrong field types)."""


class EventKind(StrEnum):
    SEND = "send"
    REJECT = "reject"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    DELIVERY = "delivery"
    DELIVERY_DELAY = "delivery_delay"
    RENDERING_FAILURE = "rendering_failure"
    SUBSCRIPTION = "subscription"
    OPEN = "open"
    CLICK = "click"
    UNKNOWN = "unknown"


# Keyed by the type name with spaces, dashes and underscores removed and lower-cased, so
# "Rendering Failure" (event publishing) and "RenderingFailure" (EventBridge) both match.
_KIND_BY_TYPE: Mapping[str, EventKind] = {
    "send": EventKind.SEND,
    "reject": EventKind.REJECT,
    "bounce": EventKind.BOUNCE,
    "complaint": EventKind.COMPLAINT,
    "delivery": EventKind.DELIVERY,
    "deliverydelay": EventKind.DELIVERY_DELAY,
    "renderingfailure": EventKind.RENDERING_FAILURE,
    "subscription": EventKind.SUBSCRIPTION,
    "open": EventKind.OPEN,
    "click": EventKind.CLICK,
}

# The per-kind object beside ``mail`` (``failure`` for Rendering Failure, per the AWS page).
_BODY_KEY: Mapping[EventKind, str] = {
    EventKind.SEND: "send",
    EventKind.REJECT: "reject",
    EventKind.BOUNCE: "bounce",
    EventKind.COMPLAINT: "complaint",
    EventKind.DELIVERY: "delivery",
    EventKind.DELIVERY_DELAY: "deliveryDelay",
    EventKind.RENDERING_FAILURE: "failure",
    EventKind.SUBSCRIPTION: "subscription",
    EventKind.OPEN: "open",
    EventKind.CLICK: "click",
}


@dataclass(frozen=True, slots=True)
class TopicStatus:
    """One SES contact-list topic and the recipient's status for it."""

    topic: str
    status: str  # "OptIn" | "OptOut" per the SES v2 API

    @property
    def opted_in(self) -> bool:
        return self.status == "OptIn"


@dataclass(frozen=True, slots=True)
class TopicPreferences:
    """A Subscription event's *new* preferences (SES list management)."""

    unsubscribe_all: bool
    topics: tuple[TopicStatus, ...]
    contact_list: str | None = None
    source: str | None = None  # e.g. "UnsubscribeHeader"


@dataclass(frozen=True, slots=True)
class SesEvent:
    """One SES event, typed; ``raw`` keeps the whole object for the ``ses_event`` row."""

    event_id: str
    kind: EventKind
    ses_message_id: str | None
    timestamp: datetime  # when the event happened (aware, UTC)
    recipients: tuple[str, ...]
    bounce_type: str | None = None  # "Permanent" | "Transient" | "Undetermined"
    bounce_subtype: str | None = None
    on_account_suppression_list: bool = False
    complaint_feedback_type: str | None = None
    tags: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    topic_preferences: TopicPreferences | None = None
    raw: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    type_name: str = ""  # the eventType/notificationType string as SES wrote it
    mail_timestamp: datetime | None = None  # when SES accepted the message
    feedback_id: str | None = None
    detail: str | None = None  # short reason: bounce type/subtype, reject reason, delay type…

    @property
    def configuration_set(self) -> str | None:
        values = self.tags.get("ses:configuration-set", ())
        return values[0] if values else None


# --- public entry points ----------------------------------------------------------------


def is_validation_notice(text: str) -> bool:
    return text.strip() == VALIDATION_NOTICE


def unwrap_sqs_body(body: str) -> tuple[str | None, dict[str, Any]] | None:
    """Split an SQS message body into (SNS MessageId or None, SES event object).

    Handles an SNS ``Notification`` envelope (SNS → SQS) and a raw SES event (raw message
    delivery, or a test that writes the event directly). Returns None for bodies that carry
    no event and should simply be deleted: SES's validation notice, and SNS subscription /
    unsubscribe confirmations (an SQS subscription in the same account needs none).
    """
    if is_validation_notice(body):
        return None
    data = _load_object(body)
    if "Type" in data and "eventType" not in data and "notificationType" not in data:
        if data["Type"] in _SNS_CONFIRMATIONS:
            return None
        if data["Type"] != "Notification":
            raise EventParseError(f"unknown SNS message type {data['Type']!r}", field="Type")
        message = data.get("Message")
        message_id = data.get("MessageId")
        if not isinstance(message, str) or not isinstance(message_id, str):
            raise EventParseError("SNS envelope without a string Message and MessageId")
        if is_validation_notice(message):
            return None
        return message_id, _load_object(message)
    return None, data


def parse_ses_event(
    event: Mapping[str, Any] | str | bytes,
    *,
    received_at: datetime,
    sns_message_id: str | None = None,
) -> SesEvent:
    """Type one SES event. Unknown types give ``EventKind.UNKNOWN``; only garbage raises.

    ``received_at`` stands in for the event time only when the event carries none.
    ``sns_message_id`` (from the verified envelope) becomes the event id; without it the id
    is derived from the SES message id, kind, event time and feedback id, so a redelivered
    raw event gets the same id again.
    """
    fallback_time = _utc(received_at)
    data = _load_object(event) if isinstance(event, str | bytes) else dict(event)
    type_name = _string(data, "eventType") or _string(data, "notificationType") or ""
    kind = _KIND_BY_TYPE.get(re.sub(r"[\s_-]", "", type_name).lower(), EventKind.UNKNOWN)
    mail = _object(data, "mail") or {}
    body = _object(data, _BODY_KEY[kind]) if kind in _BODY_KEY else None
    body = body or {}
    message_id = _string(mail, "messageId")
    mail_time = _time(_string(mail, "timestamp"))
    event_time = _time(_string(body, "timestamp")) or mail_time
    feedback_id = _string(body, "feedbackId")
    bounce_type = _string(body, "bounceType") if kind is EventKind.BOUNCE else None
    bounce_subtype = _string(body, "bounceSubType") if kind is EventKind.BOUNCE else None
    complaint_subtype = _string(body, "complaintSubType") if kind is EventKind.COMPLAINT else None
    event_id = sns_message_id or _derived_id(kind, message_id, event_time, feedback_id, data)
    return SesEvent(
        event_id=event_id,
        kind=kind,
        ses_message_id=message_id,
        timestamp=event_time or fallback_time,
        recipients=_recipients(kind, body, mail),
        bounce_type=bounce_type,
        bounce_subtype=bounce_subtype,
        on_account_suppression_list=ON_ACCOUNT_SUPPRESSION_LIST
        in (bounce_subtype, complaint_subtype),
        complaint_feedback_type=(
            _string(body, "complaintFeedbackType") if kind is EventKind.COMPLAINT else None
        ),
        tags=_tags(mail),
        topic_preferences=_topic_preferences(body) if kind is EventKind.SUBSCRIPTION else None,
        raw=MappingProxyType(data),
        type_name=type_name,
        mail_timestamp=mail_time,
        feedback_id=feedback_id,
        detail=_detail(kind, body),
    )


def parse_sqs_body(body: str, *, received_at: datetime) -> SesEvent | None:
    """:func:`unwrap_sqs_body` then :func:`parse_ses_event`; None means "delete, no event"."""
    unwrapped = unwrap_sqs_body(body)
    if unwrapped is None:
        return None
    sns_message_id, event = unwrapped
    return parse_ses_event(event, received_at=received_at, sns_message_id=sns_message_id)


# --- field readers: absent is None, a wrong JSON type is an EventParseError ----------------


def _load_object(text: str | bytes) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        raise EventParseError("SES event is not JSON") from None
    if not isinstance(data, dict):
        raise EventParseError("SES event is not a JSON object")
    return data


def _string(parent: Mapping[str, Any], key: str) -> str | None:
    value = parent.get(key)
    if value is None or isinstance(value, str):
        return value
    raise EventParseError(f"{key} is not a string", field=key)


def _object(parent: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    value = parent.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise EventParseError(f"{key} is not an object", field=key)


def _list(parent: Mapping[str, Any], key: str) -> list[Any]:
    value = parent.get(key)
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise EventParseError(f"{key} is not a list", field=key)


def _strings(parent: Mapping[str, Any], key: str) -> tuple[str, ...]:
    values = _list(parent, key)
    if not all(isinstance(value, str) for value in values):
        raise EventParseError(f"{key} holds a non-string", field=key)
    return tuple(values)


def _time(text: str | None) -> datetime | None:
    """SES writes ISO 8601 UTC (``2017-08-05T00:41:02.669Z``); unreadable means absent."""
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("received_at must be an aware datetime")
    return value.astimezone(UTC)


def _addresses(entries: list[Any], key: str) -> tuple[str, ...]:
    found: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise EventParseError(f"{key} entry is not an object", field=key)
        address = _string(entry, "emailAddress")
        if address:
            found.append(address)
    return tuple(found)


def _recipients(
    kind: EventKind, body: Mapping[str, Any], mail: Mapping[str, Any]
) -> tuple[str, ...]:
    destination = _strings(mail, "destination")
    if kind is EventKind.BOUNCE:
        return _addresses(_list(body, "bouncedRecipients"), "bouncedRecipients")
    if kind is EventKind.COMPLAINT:
        named = _addresses(_list(body, "complainedRecipients"), "complainedRecipients")
        # Feedback loops may redact the address; a one-recipient message still says who.
        return named or (destination if len(destination) == 1 else ())
    if kind is EventKind.DELIVERY:
        return _strings(body, "recipients")
    if kind is EventKind.DELIVERY_DELAY:
        return _addresses(_list(body, "delayedRecipients"), "delayedRecipients")
    return destination


def _tags(mail: Mapping[str, Any]) -> Mapping[str, tuple[str, ...]]:
    tags = _object(mail, "tags") or {}
    return MappingProxyType({name: _strings(tags, name) for name in tags})


def _topic_preferences(body: Mapping[str, Any]) -> TopicPreferences | None:
    new = _object(body, "newTopicPreferences")
    if new is None:
        return None
    statuses: list[TopicStatus] = []
    for entry in _list(new, "topicSubscriptionStatus"):
        if not isinstance(entry, dict):
            raise EventParseError("topicSubscriptionStatus entry is not an object")
        topic, status = _string(entry, "topicName"), _string(entry, "subscriptionStatus")
        if topic and status:
            statuses.append(TopicStatus(topic=topic, status=status))
    return TopicPreferences(
        unsubscribe_all=new.get("unsubscribeAll") is True,
        topics=tuple(statuses),
        contact_list=_string(body, "contactList"),
        source=_string(body, "source"),
    )


def _detail(kind: EventKind, body: Mapping[str, Any]) -> str | None:
    if kind is EventKind.BOUNCE:
        parts = [_string(body, "bounceType"), _string(body, "bounceSubType")]
        return "/".join(part for part in parts if part) or None
    if kind is EventKind.COMPLAINT:
        return _string(body, "complaintFeedbackType") or _string(body, "complaintSubType")
    key = {
        EventKind.REJECT: "reason",
        EventKind.DELIVERY: "smtpResponse",
        EventKind.DELIVERY_DELAY: "delayType",
        EventKind.RENDERING_FAILURE: "errorMessage",
    }.get(kind)
    return _string(body, key) if key else None


def _derived_id(
    kind: EventKind,
    message_id: str | None,
    event_time: datetime | None,
    feedback_id: str | None,
    data: Mapping[str, Any],
) -> str:
    """A stable id for an event that came without an SNS MessageId.

    SES message id + kind + event time (+ feedback id) names one event; lacking those, the
    canonical JSON of the whole event does (same bytes in, same id out).
    """
    if message_id and event_time:
        material = "\x1f".join((message_id, kind.value, event_time.isoformat(), feedback_id or ""))
    else:
        material = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "ses-" + hashlib.sha256(material.encode("utf-8")).hexdigest()[:40]
