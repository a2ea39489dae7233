"""Preference and suppression store: what recipients choose and which addresses are blocked.

Preferences are rows of ``preference`` keyed by (recipient, scope, scope id); the API shape
is DESIGN §13's ``{"email_enabled", "topics", "workspaces", "tasks"}``, where ``null``
in a PATCH removes an explicit choice (back to the topic default). Every write is one
transaction and an upsert, so repeating a one-click unsubscribe changes nothing.

Suppressions belong to an address, not an account; their writers live in
:mod:`scheduler.preferences.suppressions` and the store hands its suppression methods on
to them. A recipient's resubscribe only ever clears what ``clears_on_resubscribe``
allows; a bounce, complaint, deletion or manual block stays.
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

from scheduler.db import is_postgres, transaction
from scheduler.errors import InvalidInput, NotFound
from scheduler.inputs import Id, Strict, validate
from scheduler.preferences.decision import Layer, SuppressionReason
from scheduler.preferences.local_time import LocalTime
from scheduler.preferences.suppression import RESUBSCRIBE_CLEARS, email_hash
from scheduler.preferences.suppressions import SuppressionStore
from scheduler.tables import Preference, Recipient, Suppression, Topic

Scope = Literal["topic", "task", "workspace", "all"]
SCOPED = {"topic": "topics", "workspace": "workspaces", "task": "tasks"}

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
        self.suppressions = SuppressionStore(sessions)
        # The address-level writers, still reachable here for the store's callers.
        self.suppress = self.suppressions.suppress
        self.record_transient_bounce = self.suppressions.record_transient_bounce
        self.suppress_manual = self.suppressions.suppress_manual
        self.lift_manual = self.suppressions.lift_manual

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
        target = _scope_target(scope, topic=topic, task_id=task_id, workspace_id=workspace_id)
        return self._switch(recipient_id, target, False, now=now, source=source)

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
        target = _scope_target(scope, topic=topic, task_id=task_id, workspace_id=workspace_id)
        return self._switch(recipient_id, target, True, now=now, source=source)

    def _switch(
        self,
        recipient_id: str,
        target: tuple[str, str],
        enabled: bool,
        *,
        now: datetime,
        source: str,
    ) -> dict[str, Any]:
        """Set the preference at ``target`` (scope key, scope id) in one transaction."""
        scope_key, scope_id = target
        with transaction(self._sessions) as session:
            recipient = _recipient(session, recipient_id)
            if scope_key == "topic":
                _require_topics(session, {scope_id: enabled}, field="topic")
            _set(session, recipient_id, scope_key, scope_id, enabled, now, source)
            if scope_key == "global" and enabled:
                _clear_on_resubscribe(session, recipient)
            session.flush()
            return _snapshot(session, recipient, now)


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
