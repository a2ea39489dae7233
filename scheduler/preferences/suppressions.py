"""Suppression writers: which addresses are blocked, and why (DESIGN §8).

Suppressions belong to an address, not an account: they are keyed by ``email_hash`` and
written by SES event handling (bounces, complaints), operators (manual) and account
deletion (tombstones, ``deletion.py``). :func:`upsert_suppression` is the one place a row
is merged, inside the caller's transaction, so every writer obeys the same rule: a
permanent block wins over an expiring one and the later of two expiries wins.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from scheduler.clock import utc
from scheduler.db import is_postgres, transaction
from scheduler.errors import InvalidInput
from scheduler.preferences.decision import SuppressionReason
from scheduler.preferences.suppression import SOFT_BOUNCE_WINDOW, email_hash, soft_bounce_expiry
from scheduler.tables import Suppression, TransientBounce

DETAIL_MAX = 200  # suppression.detail column width
ADDRESS_WIDE = "all"  # suppression.scope of a block on the whole address


class SuppressionStore:
    """Blocks on addresses from SES events and operators; each call is one transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def suppress(
        self,
        email: str,
        reason: str,
        *,
        now: datetime,
        detail: str = "",
        source_event: str | None = None,
        expires_at: datetime | None = None,
    ) -> Suppression:
        """Block an address (upsert on hash, reason, scope); a permanent block wins over an
        expiring one and the later of two expiries wins, so replayed events never shorten
        a block."""
        _known_reason(reason)
        with transaction(self._sessions) as session:
            return upsert_suppression(
                session,
                email_hash(email),
                reason,
                now=now,
                detail=detail,
                source_event=source_event,
                expires_at=expires_at,
            )

    def record_transient_bounce(
        self, email: str, *, at: datetime, event_id: str, now: datetime | None = None
    ) -> datetime | None:
        """Count one SES ``Transient`` bounce (idempotent on ``event_id``); when the
        soft-bounce limit is reached, suppress the address until the cool-off ends.

        Returns the suppression's expiry, or ``None`` when the limit is not reached.
        """
        key, at = email_hash(email), utc(at)
        with transaction(self._sessions) as session:
            _insert_ignore(
                session,
                TransientBounce,
                {
                    "email_hash": key,
                    "bounced_at": at,
                    "event_id": event_id,
                },
                conflict=["event_id"],
            )
            # Every run of bounces that includes this one lies within one window of it;
            # runs that do not include it were judged when their own last bounce came.
            times = list(
                session.scalars(
                    select(col(TransientBounce.bounced_at)).where(
                        col(TransientBounce.email_hash) == key,
                        col(TransientBounce.bounced_at) >= at - SOFT_BOUNCE_WINDOW,
                        col(TransientBounce.bounced_at) <= at + SOFT_BOUNCE_WINDOW,
                    )
                )
            )
            expiry = soft_bounce_expiry(times, now=now or at)
            if expiry is None:
                return None
            upsert_suppression(
                session,
                key,
                SuppressionReason.SOFT_BOUNCE,
                now=now or at,
                detail=f"{len(times)} transient bounces within {SOFT_BOUNCE_WINDOW.days} days",
                source_event=event_id,
                expires_at=expiry,
            )
            return expiry

    def suppress_manual(
        self,
        email: str,
        *,
        now: datetime,
        detail: str = "",
        actor: str = "operator",
        expires_at: datetime | None = None,
    ) -> Suppression:
        """An operator's block on an address (optionally until ``expires_at``)."""
        return self.suppress(
            email,
            SuppressionReason.MANUAL,
            now=now,
            detail=detail,
            source_event=f"manual:{actor}"[:128],
            expires_at=expires_at,
        )

    def lift_manual(self, email: str, *, now: datetime) -> bool:
        """Remove an operator's block; True if there was one. Other blocks are untouched."""
        del now  # kept for a uniform signature; lifting has no time-dependent rule
        with transaction(self._sessions) as session:
            result = session.execute(
                delete(Suppression).where(
                    col(Suppression.email_hash) == email_hash(email),
                    col(Suppression.reason) == SuppressionReason.MANUAL,
                )
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]


# --- helpers shared with deletion.py and SES ingestion ---------------------------------


def upsert_suppression(
    session: Session,
    key: str,
    reason: str,
    *,
    now: datetime,
    detail: str = "",
    source_event: str | None = None,
    expires_at: datetime | None = None,
    scope: str = ADDRESS_WIDE,
    recipient_id: str | None = None,
) -> Suppression:
    """Insert-or-extend one suppression row inside the caller's transaction.

    The row is inserted with ON CONFLICT DO NOTHING and then locked and merged, so two
    workers handling events for one address never lose an update.
    """
    if expires_at is not None:
        expires_at = utc(expires_at)
    _insert_ignore(
        session,
        Suppression,
        {
            "email_hash": key,
            "reason": reason,
            "scope": scope,
            "recipient_id": recipient_id,
            "detail": detail[:DETAIL_MAX],
            "expires_at": expires_at,
            "source_event": source_event,
            "created_at": now,
        },
        conflict=["email_hash", "reason", "scope"],
    )
    query = (
        select(Suppression)
        .where(
            col(Suppression.email_hash) == key,
            col(Suppression.reason) == reason,
            col(Suppression.scope) == scope,
        )
        .execution_options(populate_existing=True)
    )
    if is_postgres(session):
        query = query.with_for_update()
    row = session.scalars(query).one()
    if row.expires_at is not None and row.expires_at <= now:
        # The old block had lapsed: this is a new one, starting now.
        row.created_at, row.expires_at = now, expires_at
    else:
        row.expires_at = _later(row.expires_at, expires_at)
    row.detail = detail[:DETAIL_MAX] or row.detail
    row.source_event = source_event or row.source_event
    row.recipient_id = recipient_id or row.recipient_id
    session.flush()
    return row


def _later(old: datetime | None, new: datetime | None) -> datetime | None:
    """Merge two expiries: ``None`` (permanent) wins, else the later one."""
    if old is None or new is None:
        return None
    return max(old, new)


def _insert_ignore(
    session: Session, model: type, values: Mapping[str, Any], *, conflict: list[str]
) -> None:
    dialect = postgresql if is_postgres(session) else sqlite
    table = model.__table__  # type: ignore[attr-defined]
    session.execute(
        dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=conflict)
    )


def _known_reason(reason: str) -> None:
    if reason not in {r.value for r in SuppressionReason}:
        raise InvalidInput(f"unknown suppression reason {reason!r}", field="reason")
