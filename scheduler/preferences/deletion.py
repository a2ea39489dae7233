"""Account deletion: stop everything for a recipient and erase their address (issue 4).

In one transaction the recipient's rules are retired, every occurrence and message that
has not gone out yet is cancelled, a hashed tombstone (``account_deleted``) records that
the address belonged to a deleted account, and the address and name are erased from the
recipient row. Complaint and bounce suppressions are keyed by the address hash, so they
outlive the account: a new registration of the same mailbox is judged by them and is
not silently mailed while a complaint stands (GDPR Art. 17 allows keeping what is needed
to honour an objection; a hash is the least that does it).
https://gdpr-info.eu/art-17-gdpr/
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from scheduler.db import transaction
from scheduler.errors import NotFound
from scheduler.preferences.decision import RecipientStatus, SuppressionReason
from scheduler.preferences.suppression import email_hash
from scheduler.preferences.suppressions import upsert_suppression
from scheduler.tables import Message, Occurrence, Preference, Recipient, ReminderRule

REASON = "the account was deleted"
OPEN_OCCURRENCES = ("pending", "ready", "deferred", "snoozed")
# Messages not yet handed to the sender. One being sent right now ("sending") is left
# to its worker: the send stage re-checks the account before composing it.
OPEN_MESSAGES = ("collecting", "queued", "retry")


@dataclass(frozen=True)
class DeletionReport:
    rules_cancelled: int
    occurrences_cancelled: int
    messages_cancelled: int
    tombstone_written: bool


def tombstone_scope(recipient_id: str) -> str:
    """The tombstone's ``suppression.scope``: one per account, so two deleted accounts
    that shared an address each keep their own (the row is unique per hash/reason/scope)."""
    return f"account:{recipient_id}"


def delete_account(
    sessions: sessionmaker[Session], recipient_id: str, *, now: datetime
) -> DeletionReport:
    """Delete ``recipient_id``'s account. Idempotent; an unknown recipient is NotFound."""
    with transaction(sessions) as session:
        recipient = session.get(Recipient, recipient_id, with_for_update=True)
        if recipient is None:
            raise NotFound(f"recipient {recipient_id!r} does not exist")
        rules = _cancel_rules(session, recipient_id, now)
        messages = _cancel_messages(session, recipient_id)
        occurrences = _cancel_occurrences(session, recipient_id, messages)
        tombstone = _write_tombstone(session, recipient, now)
        # Preferences go with the account: a later registration starts from defaults.
        session.execute(delete(Preference).where(col(Preference.recipient_id) == recipient_id))
        recipient.email = None
        recipient.name = None
        recipient.status = RecipientStatus.DELETED
        recipient.deleted_at = recipient.deleted_at or now
        recipient.updated_at = now
        return DeletionReport(rules, occurrences, len(messages), tombstone)


def _cancel_rules(session: Session, recipient_id: str, now: datetime) -> int:
    # The version bump makes any occurrence fired under the old version stale, so even
    # one a concurrent worker is holding is cancelled by the decide and send stages.
    result = session.execute(
        update(ReminderRule)
        .where(
            col(ReminderRule.recipient_id) == recipient_id,
            or_(col(ReminderRule.active), col(ReminderRule.next_fire_at).is_not(None)),
        )
        .values(
            active=False,
            next_fire_at=None,
            version=col(ReminderRule.version) + 1,
            updated_at=now,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _cancel_messages(session: Session, recipient_id: str) -> list[int]:
    ids = [
        i
        for i in session.scalars(
            select(col(Message.id)).where(
                col(Message.recipient_id) == recipient_id,
                col(Message.status).in_(OPEN_MESSAGES),
            )
        )
        if i is not None
    ]
    if ids:
        session.execute(
            update(Message)
            .where(col(Message.id).in_(ids))
            .values(status="cancelled", lease_until=None, error=REASON)
        )
    return ids


def _cancel_occurrences(session: Session, recipient_id: str, message_ids: list[int]) -> int:
    not_sent: ColumnElement[bool] = col(Occurrence.status).in_(OPEN_OCCURRENCES)
    if message_ids:
        in_cancelled = (col(Occurrence.status) == "batched") & col(Occurrence.message_id).in_(
            message_ids
        )
        not_sent = or_(not_sent, in_cancelled)
    result = session.execute(
        update(Occurrence)
        .where(col(Occurrence.recipient_id) == recipient_id, not_sent)
        .values(status="cancelled", reason=REASON, layer=None)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _write_tombstone(session: Session, recipient: Recipient, now: datetime) -> bool:
    if not recipient.email:
        return False  # already erased: the tombstone was written by the first deletion
    upsert_suppression(
        session,
        email_hash(recipient.email),
        SuppressionReason.ACCOUNT_DELETED,
        now=now,
        detail=REASON,
        source_event=f"deletion:{recipient.id}"[:128],
        scope=tombstone_scope(recipient.id),
        recipient_id=recipient.id,
    )
    return True
