"""Response bodies of the ``/v1`` API (DESIGN §13), as pydantic models.

They exist so the OpenAPI document describes exactly what is sent: every route declares
one as its ``response_model``, and each is built from a table row with ``from_row``.
Instants are always UTC with an explicit offset.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from scheduler.preferences.decision import Layer, Outcome
from scheduler.tables import Occurrence, Recipient, ReminderRule, Task, Workspace


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class QuietHoursOut(Out):
    start: str = Field(examples=["22:00"])
    end: str = Field(examples=["07:00"])


class RecipientOut(Out):
    id: str
    email: str | None
    name: str | None
    timezone: str
    locale: str
    quiet_hours: QuietHoursOut | None
    status: str = Field(description="active, or deleted after account deletion")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Recipient) -> RecipientOut:
        quiet = None
        if row.quiet_start and row.quiet_end:
            quiet = QuietHoursOut(start=row.quiet_start, end=row.quiet_end)
        return cls(
            id=row.id,
            email=row.email,
            name=row.name,
            timezone=row.timezone,
            locale=row.locale,
            quiet_hours=quiet,
            status=row.status,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class WorkspaceOut(Out):
    id: str
    name: str
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Workspace) -> WorkspaceOut:
        return cls.model_validate(row)


class TaskOut(Out):
    id: str
    workspace_id: str
    title: str
    url: str | None
    due_at: datetime | None
    status: str = Field(description="open, done or deleted")
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Task) -> TaskOut:
        return cls.model_validate(row)


class RuleOut(Out):
    id: str
    recipient_id: str
    task_id: str | None
    workspace_id: str | None
    topic: str
    schedule: dict[str, Any]
    active: bool
    next_fire_at: datetime | None = Field(
        description="the next instant the rule fires (UTC); null when it never fires again"
    )
    version: int = Field(
        description="bumped by every change; occurrences of older versions are cancelled"
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_row(cls, row: ReminderRule) -> RuleOut:
        return cls.model_validate(row)


class RulePage(BaseModel):
    items: list[RuleOut]
    next_cursor: str | None = Field(
        description="pass as `cursor` for the next page; null on the last page"
    )


class OccurrenceOut(Out):
    id: int
    rule_id: str
    fire_at: datetime
    status: str
    snoozed_from: int | None

    @classmethod
    def from_row(cls, row: Occurrence) -> OccurrenceOut:
        return cls.model_validate(row)


class ExplainItem(Out):
    rule_id: str
    fire_at: datetime
    decision: Outcome
    layer: Layer | None = Field(
        description="the layer that blocked or deferred; null when nothing did"
    )
    reason: str | None
    send_at: datetime | None = Field(description="when it was or will be handed to the sender")
    status: str | None = Field(
        default=None, description="the stored occurrence status; null for a predicted instant"
    )


class Explanation(BaseModel):
    items: list[ExplainItem]
