"""Every table of DESIGN §4, as SQLModel models.

All SQL lives with the stores that use it; this module only describes the schema.
Alembic's revisions must produce exactly this metadata on SQLite and PostgreSQL (the
tests run ``alembic upgrade head`` then compare). Instants are ``UTCDateTime`` (aware
UTC on both dialects); ids from the product backend are strings.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from scheduler.db import NAMING_CONVENTION, UTCDateTime

SQLModel.metadata.naming_convention = NAMING_CONVENTION

ID = 64  # length of product ids (recipient, workspace, task, rule)


def _utc(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _utc_required() -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=False))


def _fk(
    target: str, *, nullable: bool = True, index: bool = True, ondelete: str | None = None
) -> Any:
    return Field(
        default=None,
        sa_column=Column(
            String(ID), ForeignKey(target, ondelete=ondelete), nullable=nullable, index=index
        ),
    )


class Recipient(SQLModel, table=True):
    __tablename__ = "recipient"

    id: str = Field(primary_key=True, max_length=ID)
    email: str | None = Field(default=None, max_length=320)
    name: str | None = Field(default=None, max_length=200)
    timezone: str = Field(default="UTC", max_length=64)
    locale: str = Field(default="en", max_length=16)
    quiet_start: str | None = Field(default=None, max_length=5)
    quiet_end: str | None = Field(default=None, max_length=5)
    status: str = Field(default="active", max_length=16)
    created_at: datetime = _utc_required()
    updated_at: datetime = _utc_required()
    deleted_at: datetime | None = _utc()


class Workspace(SQLModel, table=True):
    __tablename__ = "workspace"

    id: str = Field(primary_key=True, max_length=ID)
    name: str = Field(max_length=200)
    updated_at: datetime = _utc_required()


class Task(SQLModel, table=True):
    __tablename__ = "task"

    id: str = Field(primary_key=True, max_length=ID)
    workspace_id: str = _fk("workspace.id", nullable=False)
    title: str = Field(max_length=500)
    url: str | None = Field(default=None, max_length=2000)
    due_at: datetime | None = _utc()
    status: str = Field(default="open", max_length=16)
    updated_at: datetime = _utc_required()


class Topic(SQLModel, table=True):
    __tablename__ = "topic"

    key: str = Field(primary_key=True, max_length=64)
    description: str = Field(default="", max_length=200)
    from_addr: str = Field(max_length=320)
    reply_to: str = Field(max_length=320)
    essential: bool = Field(default=False)
    default_enabled: bool = Field(default=True)
    max_lateness_seconds: int = Field(default=3600)


class ReminderRule(SQLModel, table=True):
    __tablename__ = "reminder_rule"
    __table_args__ = (
        # The fire stage's hot path: only active rules with a next instant are indexed.
        Index(
            "ix_reminder_rule_due",
            "next_fire_at",
            postgresql_where=text("active AND next_fire_at IS NOT NULL"),
            sqlite_where=text("active AND next_fire_at IS NOT NULL"),
        ),
    )

    id: str = Field(primary_key=True, max_length=ID)
    recipient_id: str = _fk("recipient.id", nullable=False)
    task_id: str | None = _fk("task.id")
    workspace_id: str | None = _fk("workspace.id")
    topic: str = Field(sa_column=Column(String(64), ForeignKey("topic.key"), nullable=False))
    schedule: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    active: bool = Field(default=True)
    next_fire_at: datetime | None = _utc()
    # Recurrence re-anchoring (DESIGN §5): last real occurrence as local wall time
    # (ISO, naive) and the COUNT still to come, so cost does not grow with age.
    anchor_local: str | None = Field(default=None, max_length=32)
    remaining_count: int | None = Field(default=None)
    last_fired_at: datetime | None = _utc()
    lease_until: datetime | None = _utc()
    leased_by: str | None = Field(default=None, max_length=64)
    version: int = Field(default=1)
    created_at: datetime = _utc_required()
    updated_at: datetime = _utc_required()


class Occurrence(SQLModel, table=True):
    __tablename__ = "occurrence"
    __table_args__ = (
        UniqueConstraint("rule_id", "fire_at"),
        Index("ix_occurrence_status_ready_at", "status", "ready_at"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    rule_id: str = Field(
        sa_column=Column(
            String(ID), ForeignKey("reminder_rule.id", ondelete="CASCADE"), nullable=False
        )
    )
    rule_version: int = Field(default=1)
    recipient_id: str = Field(max_length=ID, index=True)
    topic: str = Field(max_length=64)
    task_id: str | None = Field(default=None, max_length=ID, index=True)
    workspace_id: str | None = Field(default=None, max_length=ID)
    fire_at: datetime = _utc_required()
    # pending → ready | deferred | blocked | expired | cancelled; ready/deferred → batched
    # → sent | dropped (re-checked at send time) | expired (ramp backlog past lateness).
    status: str = Field(default="pending", max_length=16)
    reason: str | None = Field(default=None, max_length=500)
    layer: str | None = Field(default=None, max_length=16)
    decided_at: datetime | None = _utc()
    ready_at: datetime | None = _utc()
    coalesced: int = Field(default=0)
    snoozed_from: int | None = Field(
        default=None, sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), unique=True)
    )
    message_id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), ForeignKey("message.id"), index=True
        ),
    )
    created_at: datetime = _utc_required()


class Message(SQLModel, table=True):
    __tablename__ = "message"
    __table_args__ = (
        UniqueConstraint("recipient_id", "topic", "window_start"),
        Index("ix_message_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    )
    recipient_id: str = Field(max_length=ID)
    topic: str = Field(max_length=64)
    stream: str = Field(default="transactional", max_length=32)
    window_start: datetime = _utc_required()
    window_end: datetime = _utc_required()
    # collecting → queued → sending (leased) → sent | retry | failed | cancelled;
    # sent → delivered | bounced | complained | rejected (SES events).
    status: str = Field(default="collecting", max_length=16)
    item_count: int = Field(default=0)
    essential: bool = Field(default=False)
    due_at: datetime | None = _utc()
    attempts: int = Field(default=0)
    next_attempt_at: datetime | None = _utc()
    lease_until: datetime | None = _utc()
    leased_by: str | None = Field(default=None, max_length=64)
    ses_message_id: str | None = Field(default=None, max_length=128, index=True)
    error: str | None = Field(default=None, max_length=500)
    created_at: datetime = _utc_required()
    sent_at: datetime | None = _utc()


class Preference(SQLModel, table=True):
    __tablename__ = "preference"
    __table_args__ = (UniqueConstraint("recipient_id", "scope", "scope_id"),)

    id: int | None = Field(default=None, primary_key=True)
    recipient_id: str = _fk("recipient.id", nullable=False, index=False, ondelete="CASCADE")
    scope: str = Field(max_length=16)  # global | workspace | task | topic
    scope_id: str = Field(default="", max_length=ID)
    email_enabled: bool
    source: str = Field(default="api", max_length=32)
    updated_at: datetime = _utc_required()


class Suppression(SQLModel, table=True):
    """Keyed by the SHA-256 of the normalised address, so deleting an account can erase
    the address while a complaint or bounce against it still stands."""

    __tablename__ = "suppression"
    __table_args__ = (UniqueConstraint("email_hash", "reason", "scope"),)

    id: int | None = Field(default=None, primary_key=True)
    email_hash: str = Field(max_length=64, index=True)
    reason: str = Field(max_length=24)
    scope: str = Field(default="all", max_length=80)
    recipient_id: str | None = Field(default=None, max_length=ID)
    detail: str = Field(default="", max_length=200)
    expires_at: datetime | None = _utc()
    source_event: str | None = Field(default=None, max_length=128)
    created_at: datetime = _utc_required()


class TransientBounce(SQLModel, table=True):
    """Evidence for the soft-bounce limit (N transient bounces within M days)."""

    __tablename__ = "transient_bounce"

    id: int | None = Field(default=None, primary_key=True)
    email_hash: str = Field(max_length=64, index=True)
    bounced_at: datetime = _utc_required()
    event_id: str = Field(max_length=128, unique=True)


class SesEvent(SQLModel, table=True):
    __tablename__ = "ses_event"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=128, unique=True)
    kind: str = Field(max_length=32)
    ses_message_id: str | None = Field(default=None, max_length=128)
    raw: str = Field(sa_column=Column(Text, nullable=False))
    received_at: datetime = _utc_required()


class SendDay(SQLModel, table=True):
    __tablename__ = "send_day"

    stream: str = Field(primary_key=True, max_length=32)
    day: date = Field(sa_column=Column(Date, primary_key=True))
    granted: int = Field(default=0)
    sent: int = Field(default=0)
    delivered: int = Field(default=0)
    bounced: int = Field(default=0)
    complained: int = Field(default=0)
    rejected: int = Field(default=0)
    delayed: int = Field(default=0)


class Ramp(SQLModel, table=True):
    __tablename__ = "ramp"

    stream: str = Field(primary_key=True, max_length=32)
    mode: str = Field(default="auto", max_length=16)
    daily_limit: int = Field(default=200)
    rate_per_second: float = Field(default=1.0)
    step: int = Field(default=0)
    reason: str = Field(default="", max_length=500)
    # The per-second window shared by all workers: the epoch second and grants in it.
    second: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default="0"))
    second_count: int = Field(default=0)
    evaluated_day: date | None = Field(default=None, sa_column=Column(Date, nullable=True))
    updated_at: datetime = _utc_required()


class RampChange(SQLModel, table=True):
    __tablename__ = "ramp_change"

    id: int | None = Field(default=None, primary_key=True)
    stream: str = Field(max_length=32, index=True)
    at: datetime = _utc_required()
    actor: str = Field(max_length=120)
    old: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    new: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    reason: str = Field(max_length=500)


class ApiKey(SQLModel, table=True):
    """Bearer keys: only a hash of the secret is stored (the key is shown once)."""

    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=32)
    secret_hash: str = Field(max_length=64)
    scopes: str = Field(max_length=64)
    name: str = Field(default="", max_length=120)
    created_at: datetime = _utc_required()
    revoked_at: datetime | None = _utc()
