"""Preference and suppression store: what recipients choose and which addresses are blocked.

Preferences are rows of ``preference`` keyed by (recipient, scope, scope id); the API shape
is DESIGN §13's ``{"email_enabled", "topics", "workspaces", "tasks"}``, where ``null``
in a PATCH removes an explicit choice (back to the topic default). Every write is one
transaction and an upsert, so repeating a one-click unsubscribe changes nothing.

Suppressions belong to an address, not an account: they are keyed by ``email_hash`` and
written by SES event handling (bounces, complaints), operators (manual) and account
deletion (tombstones, ``deletion.py``). A recipient's resubscribe only ever clears what
``clears_on_resubscribe`` allows; a bounce, complaint, deletion or manual block stays.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool
from sqlalchemy import ColumnElement, and_, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from scheduler.clock import utc
from scheduler.db import is_postgres, transaction
from scheduler.errors import InvalidInput, NotFound
from scheduler.inputs import Id, Strict, validate
from scheduler.preferences.decision import Layer, SuppressionReason
from scheduler.preferences.local_time import LocalTime
from scheduler.preferences.suppression import (
    RESUBSCRIBE_CLEARS,
    SOFT_BOUNCE_WINDOW,
    email_hash,
    soft_bounce_expiry,
)
from scheduler.tables import Preference, Recipient, Suppression, Topic, TransientBounce

Scope = Literal["topic", "task", "workspace", "all"]
SCOPED = {"topic": "topics", "workspace": "workspaces", "task": "tasks"}
DETAIL_MAX = 200  # suppression.detail column width
ADDRESS_WIDE = "all"  # suppression.scope of a block on the whole address

_TopicKey = Annotated[str, Field(min_length=1, max_length=64)]


class PreferencesPatch(Strict):
    """A partial change in the §13 shape; ``None`` removes an explicit choice."""

    email_enabled: StrictBool | None = None
    topics: dict[_TopicKey, StrictBool | None] = Field(default_factory=dict)
    workspaces: dict[Id, StrictBool | None] = Field(default_factory=dict)
    tasks: dict[Id, StrictBool | None] = Field(default_factory=dict)


class PreferenceStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    # --- preferences -------------------------------------------------------------

    def get(self, recipient_id: str, *, now: datetime | None = None) -> dict[str, Any]:
        """The recipient's choices and the blocks on their address.

        ``blocks`` lists suppressions (reason, layer, since, until; never the address or
        the free-text detail, which may quote it). With ``now``, only those in force.
        """
        with self._sessions() as session:
            recipient = _recipient(session, recipient_id)
            return _snapshot(session, recipient, now)

    def patch(
        self,
        recipient_id: str,
        data: object,
        *,
        now: datetime,
        source: str = "api",
        local_time: LocalTime | None = None,
    ) -> dict[str, Any]:
        """Apply a partial change in one transaction; returns the new snapshot.

        ``local_time`` (the preference page) also sets the recipient's time zone and quiet
        hours, in the same transaction as the choices.
        """
        body = validate(PreferencesPatch, data)
        with transaction(self._sessions) as session:
            recipient = _recipient(session, recipient_id)
            _require_topics(session, body.topics)
            if local_time is not None:
                recipient.timezone = local_time.timezone
                recipient.quiet_start = local_time.quiet_start
                recipient.quiet_end = local_time.quiet_end
                recipient.updated_at = now
            if "email_enabled" in body.model_fields_set:
                _set(session, recipient_id, "global", "", body.email_enabled, now, source)
                if body.email_enabled:
                    _clear_on_resubscribe(session, recipient)
            for scope, attribute in SCOPED.items():
                choices: dict[str, bool | None] = getattr(body, attribute)
                for scope_id, enabled in sorted(choices.items()):
                    _set(session, recipient_id, scope, scope_id, enabled, now, source)
            session.flush()
            return _snapshot(session, recipient, now)

    def unsubscribe(
        self,
        recipient_id: str,
        scope: Scope,
        *,
        topic: str | None = None,
        task_id: str | None = None,
        workspace_id: str | None = None,
        now: datetime,
        source: str = "one-click",
    ) -> dict[str, Any]:
        """Turn reminder email off at ``scope`` ("all" is the global switch). Idempotent."""
        return self._switch(
            recipient_id,
            scope,
            False,
            topic=topic,
            task_id=task_id,
            workspace_id=workspace_id,
            now=now,
            source=source,
        )

    def resubscribe(
        self,
        recipient_id: str,
        scope: Scope,
        *,
        topic: str | None = None,
        task_id: str | None = None,
        workspace_id: str | None = None,
        now: datetime,
        source: str = "preferences-page",
    ) -> dict[str, Any]:
        """Turn reminder email back on at ``scope``; "all" also clears an unsubscribe-all
        suppression, never a bounce, complaint, deletion or manual block. Idempotent."""
        return self._switch(
            recipient_id,
            scope,
            True,
            topic=topic,
            task_id=task_id,
            workspace_id=workspace_id,
            now=now,
            source=source,
        )

    def _switch(
        self,
        recipient_id: str,
        scope: str,
        enabled: bool,
        *,
        topic: str | None,
        task_id: str | None,
        workspace_id: str | None,
        now: datetime,
        source: str,
    ) -> dict[str, Any]:
        scope_key, scope_id = _scope_target(
            scope, topic=topic, task_id=task_id, workspace_id=workspace_id
        )
        with transaction(self._sessions) as session:
            recipient = _recipient(session, recipient_id)
            if scope_key == "topic":
                _require_topics(session, {scope_id: enabled}, field="topic")
            _set(session, recipient_id, scope_key, scope_id, enabled, now, source)
            if scope_key == "global" and enabled:
                _clear_on_resubscribe(session, recipient)
            session.flush()
            return _snapshot(session, recipient, now)

    # --- suppressions (SES events, operators) -------------------------------------

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


# --- helpers shared with deletion.py --------------------------------------------------


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


def _set(
    session: Session,
    recipient_id: str,
    scope: str,
    scope_id: str,
    enabled: bool | None,
    now: datetime,
    source: str,
) -> None:
    match = and_(
        col(Preference.recipient_id) == recipient_id,
        col(Preference.scope) == scope,
        col(Preference.scope_id) == scope_id,
    )
    if enabled is None:
        session.execute(delete(Preference).where(match))
        return
    dialect = postgresql if is_postgres(session) else sqlite
    statement = dialect.insert(Preference.__table__)  # type: ignore[attr-defined]
    statement = statement.values(
        recipient_id=recipient_id,
        scope=scope,
        scope_id=scope_id,
        email_enabled=enabled,
        source=source[:32],
        updated_at=now,
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["recipient_id", "scope", "scope_id"],
            set_={"email_enabled": enabled, "source": source[:32], "updated_at": now},
        )
    )


def _clear_on_resubscribe(session: Session, recipient: Recipient) -> None:
    if not recipient.email:
        return
    session.execute(
        delete(Suppression).where(
            col(Suppression.email_hash) == email_hash(recipient.email),
            col(Suppression.reason).in_(RESUBSCRIBE_CLEARS),
        )
    )


def _scope_target(
    scope: str, *, topic: str | None, task_id: str | None, workspace_id: str | None
) -> tuple[str, str]:
    targets = {
        "topic": ("topic", topic),
        "task": ("task", task_id),
        "workspace": ("workspace", workspace_id),
        "all": ("global", ""),
    }
    if scope not in targets:
        raise InvalidInput("must be one of topic, task, workspace, all", field="scope")
    key, scope_id = targets[scope]
    if scope_id is None:
        field = "task_id" if scope == "task" else f"{scope}_id" if scope != "topic" else "topic"
        raise InvalidInput(f"scope {scope!r} needs {field}", field=field)
    return key, scope_id


def _recipient(session: Session, recipient_id: str) -> Recipient:
    row = session.get(Recipient, recipient_id)
    if row is None:
        raise NotFound(f"recipient {recipient_id!r} does not exist")
    return row


def _require_topics(
    session: Session, topics: Mapping[str, object], *, field: str | None = None
) -> None:
    if not topics:
        return
    known = set(session.scalars(select(col(Topic.key))))
    for key in sorted(topics):
        if key not in known:
            raise InvalidInput(f"unknown topic {key!r}", field=field or f"topics.{key}")


def _known_reason(reason: str) -> None:
    if reason not in {r.value for r in SuppressionReason}:
        raise InvalidInput(f"unknown suppression reason {reason!r}", field="reason")


def _snapshot(session: Session, recipient: Recipient, now: datetime | None) -> dict[str, Any]:
    shape: dict[str, Any] = {"email_enabled": None, "topics": {}, "workspaces": {}, "tasks": {}}
    rows = session.scalars(
        select(Preference)
        .where(col(Preference.recipient_id) == recipient.id)
        .order_by(col(Preference.scope), col(Preference.scope_id))
    )
    for row in rows:
        if row.scope == "global":
            shape["email_enabled"] = row.email_enabled
        elif row.scope in SCOPED:
            shape[SCOPED[row.scope]][row.scope_id] = row.email_enabled
    shape["blocks"] = blocks(session, recipient, now)
    return shape


def blocks(session: Session, recipient: Recipient, now: datetime | None) -> list[dict[str, Any]]:
    """Suppressions that apply to this recipient, most recent first, without the address."""
    applies: list[ColumnElement[bool]] = [
        and_(
            col(Suppression.reason) == SuppressionReason.ACCOUNT_DELETED,
            col(Suppression.recipient_id) == recipient.id,
        )
    ]
    if recipient.email:
        applies.append(
            and_(
                col(Suppression.email_hash) == email_hash(recipient.email),
                col(Suppression.reason) != SuppressionReason.ACCOUNT_DELETED,
            )
        )
    query = (
        select(Suppression)
        .where(or_(*applies))
        .order_by(col(Suppression.created_at).desc(), col(Suppression.reason))
    )
    found = []
    for row in session.scalars(query):
        if now is not None and row.expires_at is not None and row.expires_at <= now:
            continue
        layer = (
            Layer.GLOBAL if row.reason == SuppressionReason.UNSUBSCRIBE_ALL else Layer.SUPPRESSION
        )
        found.append(
            {
                "reason": row.reason,
                "layer": layer.value,
                "since": row.created_at,
                "until": row.expires_at,
                "clears_on_resubscribe": row.reason in RESUBSCRIBE_CLEARS,
            }
        )
    return found
