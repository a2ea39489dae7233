"""Apply SES events to the database: one transaction per event, idempotent on its id.

The rules live in :mod:`scheduler.delivery.ses_effects` (``effects``); this module is the
store side. ``ingest`` inserts the ``ses_event`` row with ``ON CONFLICT DO NOTHING`` on
``event_id`` first: if the row already existed the event is a replay (SNS retries with the
same MessageId, SQS delivers at least once) and nothing else changes. Otherwise every
effect is applied in the same transaction, so an event is either fully applied and
recorded, or neither (DESIGN §10).

Addresses never reach the logs: events are logged by id, kind and SES message id.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from scheduler.db import is_postgres, transaction
from scheduler.delivery import send_day
from scheduler.delivery.ses_effects import (
    Effect,
    MessageStatus,
    RecordSoftBounce,
    SetMessageStatus,
    SetTopicPreferences,
    Suppress,
    effects,
    status_supersedes,
)
from scheduler.delivery.ses_events import SesEvent
from scheduler.preferences.suppression import (
    SOFT_BOUNCE_COOLOFF,
    SOFT_BOUNCE_LIMIT,
    SOFT_BOUNCE_WINDOW,
    email_hash,
    normalize_email,
    soft_bounce_expiry,
)
from scheduler.preferences.suppressions import upsert_suppression
from scheduler.tables import Message as MessageRow
from scheduler.tables import Preference, Recipient, Topic, TransientBounce
from scheduler.tables import SesEvent as SesEventRow

if TYPE_CHECKING:
    from scheduler.preferences.store import PreferenceStore

log = logging.getLogger(__name__)

PREFERENCE_SOURCE = "ses_subscription"
ERROR_LENGTH = 500  # message.error

# SES statuses that replace message.status. A delay is no final state (SES keeps trying,
# https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html),
# so it is only noted in ``error``; a rendering failure means SES sent nothing: failed.
_STORED_STATUS: dict[MessageStatus, str | None] = {
    MessageStatus.DELIVERED: "delivered",
    MessageStatus.BOUNCED: "bounced",
    MessageStatus.COMPLAINED: "complained",
    MessageStatus.REJECTED: "rejected",
    MessageStatus.RENDERING_FAILED: "failed",
    MessageStatus.DELIVERY_DELAYED: None,
}
# How a stored status ranks for ``status_supersedes``. A message with an SES id that is
# ``failed`` can only have failed by a rendering failure (the send stage fails messages
# before SES accepts them, so those have no SES id and get no events).
_RANK_OF_STORED: dict[str, MessageStatus] = {
    "delivered": MessageStatus.DELIVERED,
    "bounced": MessageStatus.BOUNCED,
    "complained": MessageStatus.COMPLAINED,
    "rejected": MessageStatus.REJECTED,
    "failed": MessageStatus.RENDERING_FAILED,
}

_preference_t = Preference.__table__  # type: ignore[attr-defined]
_ses_event_t = SesEventRow.__table__  # type: ignore[attr-defined]
_transient_t = TransientBounce.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class SoftBouncePolicy:
    """N transient bounces within ``window`` suppress the address for ``cooloff``."""

    limit: int = SOFT_BOUNCE_LIMIT
    window: timedelta = SOFT_BOUNCE_WINDOW
    cooloff: timedelta = SOFT_BOUNCE_COOLOFF


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What one ``ingest`` call did. ``applied`` names each effect applied, in order."""

    event_id: str
    kind: str
    duplicate: bool
    applied: tuple[str, ...] = ()

    @property
    def stored(self) -> bool:
        return not self.duplicate


class EventIngestor:
    """Stores SES events and applies their effects; safe to share between threads."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        # Accepted for the composition root; its methods each open their own transaction,
        # so ingestion writes through the session-level ``suppressions.upsert_suppression``.
        preferences_store: PreferenceStore | None = None,
        *,
        stream: str,
        soft_bounces: SoftBouncePolicy | None = None,
    ) -> None:
        self._sessions = sessions
        self._preferences = preferences_store
        self._stream = stream
        self._soft = soft_bounces or SoftBouncePolicy()

    def ingest(self, event: SesEvent, *, now: datetime) -> IngestResult:
        with transaction(self._sessions) as session:
            if not _insert_event(session, event, now):
                log.info(
                    "SES event %s (%s) already ingested: replay ignored", event.event_id, event.kind
                )
                return IngestResult(event.event_id, event.kind.value, duplicate=True)
            applied = [self._apply(session, effect, event, now) for effect in effects(event)]
        if event.kind == "unknown":
            log.warning(
                "stored SES event %s of unknown type %r; no effect",
                event.event_id,
                event.type_name[:64],
            )
        else:
            log.info(
                "ingested SES event %s (%s, message %s): %s",
                event.event_id,
                event.kind,
                event.ses_message_id,
                ", ".join(applied) or "no effect",
            )
        return IngestResult(event.event_id, event.kind.value, False, tuple(applied))

    def store_unparseable(self, event_id: str, raw: str, *, now: datetime) -> bool:
        """Keep a body that is no SES event at all (kind ``unparseable``); False if known."""
        with transaction(self._sessions) as session:
            values = {
                "event_id": event_id,
                "kind": "unparseable",
                "ses_message_id": None,
                "raw": raw,
                "received_at": now,
            }
            return _insert_ignore(session, _ses_event_t, values, ["event_id"])

    def _apply(self, session: Session, effect: Effect, event: SesEvent, now: datetime) -> str:
        if isinstance(effect, Suppress):
            _suppress(
                session,
                effect.email,
                effect.reason,
                detail=effect.detail,
                source_event=event.event_id,
                now=now,
            )
            return f"suppress:{effect.reason}"
        if isinstance(effect, RecordSoftBounce):
            return self._soft_bounce(session, effect, event, now)
        if isinstance(effect, SetMessageStatus):
            return _set_status(session, effect)
        if isinstance(effect, SetTopicPreferences):
            return _set_topic_preferences(session, effect)
        send_day.increment(session, self._stream, effect.day, effect.column.value, effect.amount)
        return f"count:{effect.column.value}"

    def _soft_bounce(
        self, session: Session, effect: RecordSoftBounce, event: SesEvent, now: datetime
    ) -> str:
        key = email_hash(effect.email)
        # transient_bounce.event_id is unique: one event may name several recipients.
        evidence_id = event.event_id
        if len(event.recipients) > 1:
            evidence_id = f"{event.event_id}:{key[:16]}"
        _insert_ignore(
            session,
            _transient_t,
            {"email_hash": key, "bounced_at": effect.at, "event_id": evidence_id},
            ["event_id"],
        )
        since = now - self._soft.window - self._soft.cooloff
        times = session.scalars(
            select(col(TransientBounce.bounced_at)).where(
                col(TransientBounce.email_hash) == key, col(TransientBounce.bounced_at) >= since
            )
        ).all()
        expiry = soft_bounce_expiry(
            times,
            now=now,
            limit=self._soft.limit,
            window=self._soft.window,
            cooloff=self._soft.cooloff,
        )
        if expiry is None:
            return "soft_bounce:counted"
        _suppress(
            session,
            effect.email,
            "soft_bounce",
            detail=f"{len(times)} transient bounces within {self._soft.window.days} days",
            source_event=event.event_id,
            now=now,
            expires_at=expiry,
        )
        return "soft_bounce:suppressed"


def _insert_event(session: Session, event: SesEvent, now: datetime) -> bool:
    values = {
        "event_id": event.event_id,
        "kind": event.kind.value,
        "ses_message_id": event.ses_message_id,
        "raw": json.dumps(dict(event.raw), ensure_ascii=False, separators=(",", ":")),
        "received_at": now,
    }
    return _insert_ignore(session, _ses_event_t, values, ["event_id"])


def _insert_ignore(session: Session, table: Any, values: dict[str, Any], keys: list[str]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; True when the row was new."""
    dialect = postgresql if is_postgres(session) else sqlite
    statement = dialect.insert(table).values(values).on_conflict_do_nothing(index_elements=keys)
    inserted = session.execute(statement.returning(table.c[keys[0]])).first()
    return inserted is not None


def _suppress(
    session: Session,
    email: str,
    reason: str,
    *,
    detail: str | None,
    source_event: str,
    now: datetime,
    expires_at: datetime | None = None,
) -> None:
    """The preference store's own upsert, inside this event's transaction: a permanent
    block wins over an expiring one and the later expiry wins, so replays and late events
    never shorten a block."""
    upsert_suppression(
        session,
        email_hash(email),
        reason,
        now=now,
        detail=detail or "",
        source_event=source_event,
        expires_at=expires_at,
    )


def _set_status(session: Session, effect: SetMessageStatus) -> str:
    message = session.scalars(
        select(MessageRow).where(col(MessageRow.ses_message_id) == effect.ses_message_id).limit(1)
    ).first()
    if message is None:
        return "status:no_message"
    note = f"{effect.status.value}: {effect.detail}" if effect.detail else effect.status.value
    if not status_supersedes(effect.status, _RANK_OF_STORED.get(message.status)):
        return f"status:{effect.status.value}:kept"
    stored = _STORED_STATUS[effect.status]
    if stored is not None:
        message.status = stored
    message.error = note[:ERROR_LENGTH]
    return f"status:{effect.status.value}"


def _set_topic_preferences(session: Session, effect: SetTopicPreferences) -> str:
    """SES list management's new choices, for every recipient with that address."""
    address = normalize_email(effect.email)
    recipient_ids = session.scalars(
        select(col(Recipient.id)).where(func.lower(func.trim(col(Recipient.email))) == address)
    ).all()
    if not recipient_ids:
        return "preferences:no_recipient"
    known = set(session.scalars(select(col(Topic.key))).all())
    choices: list[tuple[str, str, bool]] = []
    if effect.unsubscribe_all:
        choices.append(("global", "", False))
    for status in effect.topics:
        if status.topic in known:
            choices.append(("topic", status.topic, status.opted_in))
        else:
            log.info(
                "SES subscription event names topic %r, which is not ours: ignored",
                status.topic[:64],
            )
    for recipient_id in recipient_ids:
        _upsert_preferences(session, recipient_id, choices, effect.at)
    return f"preferences:{len(choices)}x{len(recipient_ids)}"


def _upsert_preferences(
    session: Session, recipient_id: str, choices: Sequence[tuple[str, str, bool]], at: datetime
) -> None:
    dialect = postgresql if is_postgres(session) else sqlite
    for scope, scope_id, enabled in choices:
        statement = dialect.insert(_preference_t).values(
            recipient_id=recipient_id,
            scope=scope,
            scope_id=scope_id,
            email_enabled=enabled,
            source=PREFERENCE_SOURCE,
            updated_at=at,
        )
        # Events arrive out of order: a choice made later (through our own pages or
        # API) is not overwritten by an older SES event.
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["recipient_id", "scope", "scope_id"],
                set_={"email_enabled": enabled, "source": PREFERENCE_SOURCE, "updated_at": at},
                where=_preference_t.c.updated_at <= at,
            )
        )
