"""What the store must do about one SES event (pure: no I/O, no clock).

:func:`effects` turns a parsed :class:`~scheduler.delivery.ses_events.SesEvent` into a list
of small frozen records that the store (:mod:`scheduler.delivery.ses_ingest`) applies in
one transaction: the store owns I/O, this module owns the rules. Parsing is
:mod:`scheduler.delivery.ses_events`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Literal

from scheduler.delivery.ses_events import EventKind, SesEvent, TopicStatus

SuppressionReasonName = Literal["hard_bounce", "complaint"]


@dataclass(frozen=True, slots=True)
class Suppress:
    """Add (or keep) ``email`` on our suppression list.

    ``new_evidence`` is False when SES says the address was already on the account-level
    suppression list (subtype ``OnAccountSuppressionList``): SES did not even try, so it is
    no new bounce/complaint and does not count toward the rates, but the row is still
    written so our own list catches up with SES's and we stop spending quota on it.
    """

    email: str
    reason: SuppressionReasonName
    detail: str | None  # bounce subtype or complaint feedback type
    new_evidence: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class RecordSoftBounce:
    """A Transient or Undetermined bounce: count it; repeated ones suppress for a cool-off."""

    email: str
    bounce_type: str
    bounce_subtype: str | None
    at: datetime


class MessageStatus(StrEnum):
    DELIVERY_DELAYED = "delivery_delayed"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    REJECTED = "rejected"
    RENDERING_FAILED = "rendering_failed"
    COMPLAINED = "complained"


# Events arrive out of order and a Delivery can be followed by a Bounce, so a status only
# moves "up": a late Delivery never overwrites a Bounce, a Complaint overrides everything.
_STATUS_RANK: Mapping[str, int] = {
    MessageStatus.DELIVERY_DELAYED: 1,
    MessageStatus.DELIVERED: 2,
    MessageStatus.BOUNCED: 3,
    MessageStatus.REJECTED: 3,
    MessageStatus.RENDERING_FAILED: 3,
    MessageStatus.COMPLAINED: 4,
}


def status_supersedes(new: MessageStatus, current: str | None) -> bool:
    """Whether ``new`` may replace the stored status (send-side statuses rank lowest)."""
    return _STATUS_RANK[new] > _STATUS_RANK.get(current or "", 0)


@dataclass(frozen=True, slots=True)
class SetMessageStatus:
    """Move the message SES knows as ``ses_message_id`` (see :func:`status_supersedes`)."""

    ses_message_id: str
    status: MessageStatus
    at: datetime
    detail: str | None


@dataclass(frozen=True, slots=True)
class SetTopicPreferences:
    """SES list management changed ``email``'s subscription (new preferences only)."""

    email: str
    unsubscribe_all: bool
    topics: tuple[TopicStatus, ...]
    at: datetime


class SendDayColumn(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class CountSendDay:
    """Add ``amount`` to ``send_day.<column>`` for the stream of ``configuration_set``.

    ``day`` is the UTC date the message was *sent* (``mail.timestamp``), so a day's
    bounced/sent is the bounce rate of that day's mail, as the ramp reads it.
    """

    column: SendDayColumn
    day: date
    amount: int
    configuration_set: str | None


Effect = Suppress | RecordSoftBounce | SetMessageStatus | SetTopicPreferences | CountSendDay


def effects(event: SesEvent) -> list[Effect]:
    """The store's work for one event. Unknown, Send, Open and Click events need none.

    ``send_day.sent`` is counted by the sender when SES accepts a message (it works with
    the outbox sender too and feeds the ramp limiter), never by Send events: counting both
    would double it.
    """
    decide = _DECISIONS.get(event.kind)
    return decide(event) if decide else []


def _status(event: SesEvent, status: MessageStatus) -> list[Effect]:
    if event.ses_message_id is None:
        return []
    return [SetMessageStatus(event.ses_message_id, status, event.timestamp, event.detail)]


def _count(event: SesEvent, column: SendDayColumn) -> CountSendDay:
    day = (event.mail_timestamp or event.timestamp).date()
    return CountSendDay(column, day, max(1, len(event.recipients)), event.configuration_set)


def _bounce(event: SesEvent) -> list[Effect]:
    out: list[Effect] = []
    if event.bounce_type == "Permanent":
        # UnsubscribedRecipient: SES list management refused to send; no address problem.
        if event.bounce_subtype != "UnsubscribedRecipient":
            fresh = not event.on_account_suppression_list
            out += [
                Suppress(email, "hard_bounce", event.bounce_subtype, fresh, event.timestamp)
                for email in event.recipients
            ]
            if fresh:
                out.append(_count(event, SendDayColumn.BOUNCED))
    else:
        # Transient, Undetermined or missing: SES's bounce rate counts none of these.
        bounce_type = event.bounce_type or "Undetermined"
        out += [
            RecordSoftBounce(email, bounce_type, event.bounce_subtype, event.timestamp)
            for email in event.recipients
        ]
    return _status(event, MessageStatus.BOUNCED) + out


def _complaint(event: SesEvent) -> list[Effect]:
    # ARF "not-spam" (RFC 6650) is a report that the mail is NOT spam: nothing to do.
    if event.complaint_feedback_type == "not-spam":
        return []
    fresh = not event.on_account_suppression_list
    out: list[Effect] = [
        Suppress(email, "complaint", event.complaint_feedback_type, fresh, event.timestamp)
        for email in event.recipients
    ]
    if fresh:
        out.append(_count(event, SendDayColumn.COMPLAINED))
    return _status(event, MessageStatus.COMPLAINED) + out


def _subscription(event: SesEvent) -> list[Effect]:
    prefs = event.topic_preferences
    if prefs is None:
        return []
    return [
        SetTopicPreferences(email, prefs.unsubscribe_all, prefs.topics, event.timestamp)
        for email in event.recipients
    ]


_DECISIONS: Mapping[EventKind, Callable[[SesEvent], list[Effect]]] = {
    EventKind.BOUNCE: _bounce,
    EventKind.COMPLAINT: _complaint,
    EventKind.DELIVERY: lambda event: [
        *_status(event, MessageStatus.DELIVERED),
        _count(event, SendDayColumn.DELIVERED),
    ],
    EventKind.REJECT: lambda event: [
        *_status(event, MessageStatus.REJECTED),
        _count(event, SendDayColumn.REJECTED),
    ],
    EventKind.DELIVERY_DELAY: lambda event: _status(event, MessageStatus.DELIVERY_DELAYED),
    EventKind.RENDERING_FAILURE: lambda event: _status(event, MessageStatus.RENDERING_FAILED),
    EventKind.SUBSCRIPTION: _subscription,
}
