"""What the preference page shows, and what a submitted form changes.

The page lists every level DESIGN §6 evaluates: the global switch, each topic, and the
workspaces and tasks the recipient has rules for (or an explicit choice about), by name.
Each is a checkbox whose state is the *effective* one (an unset level shows its default),
and the form carries the keys it showed; a save writes only the levels whose submitted
state differs from the stored effective state. So an untouched box stays unset (it keeps
following the topic default), a stale or repeated post changes nothing twice, and a level
that appeared after the page was loaded is never switched off by omission.

Address-level blocks (bounce, complaint, manual, deletion) are explained and cannot be
toggled: resubscribing never clears them (DESIGN §6). An ``unsubscribe_all`` suppression is
the recipient's own choice and shows as the global switch being off; turning it back on
clears it (``PreferenceStore.patch``).
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from scheduler.errors import NotFound
from scheduler.preferences.decision import SuppressionReason
from scheduler.preferences.local_time import LocalTime
from scheduler.preferences.store import blocks
from scheduler.tables import Preference, Recipient, ReminderRule, Task, Topic, Workspace

GLOBAL_KEY: Final = "global:"
_PATCH_FIELD: Final = {"topic": "topics", "workspace": "workspaces", "task": "tasks"}

_BLOCK_TEXT: Final = {
    SuppressionReason.HARD_BOUNCE: (
        "Mail to your address bounced, so we stopped sending to it. "
        "Once the mailbox works again, contact support to receive reminders."
    ),
    SuppressionReason.COMPLAINT: (
        "A message from us was reported as spam from your address, so we stopped sending "
        "to it. Contact support if you want reminders again."
    ),
    SuppressionReason.SOFT_BOUNCE: (
        "Your mailbox refused several messages in a row, so email is paused for a while."
    ),
    SuppressionReason.MANUAL: "Our support team has paused email to your address.",
    SuppressionReason.ACCOUNT_DELETED: "This account was deleted; nothing is sent to it.",
}
_UNKNOWN_BLOCK: Final = "Email to your address is blocked. Contact support to find out why."


@dataclass(frozen=True)
class Toggle:
    """One checkbox: ``key`` is ``kind:id`` (``global:`` for the global switch)."""

    key: str
    label: str
    detail: str | None
    enabled: bool
    locked: bool = False  # an essential topic: always sent, nothing to choose


@dataclass(frozen=True)
class Block:
    reason: str
    explanation: str
    until: str | None  # a local date, or None for a block without an end


@dataclass(frozen=True)
class Change:
    label: str
    detail: str | None
    enabled: bool


@dataclass(frozen=True)
class Listing:
    recipient_id: str
    deleted: bool
    everything: Toggle
    topics: list[Toggle]
    workspaces: list[Toggle]
    tasks: list[Toggle]
    blocks: list[Block] = field(default_factory=list)
    local_time: LocalTime | None = None  # the time zone and quiet hours on the recipient row
    address: str | None = None  # masked, so the reader can tell whose settings these are

    def toggles(self) -> dict[str, Toggle]:
        every = [self.everything, *self.topics, *self.workspaces, *self.tasks]
        return {toggle.key: toggle for toggle in every if not toggle.locked}


def load_listing(session: Session, recipient_id: str, *, now: datetime) -> Listing:
    recipient = session.get(Recipient, recipient_id)
    if recipient is None:
        raise NotFound(f"recipient {recipient_id!r} does not exist")
    explicit: dict[tuple[str, str], bool] = {
        (row.scope, row.scope_id): row.email_enabled
        for row in session.scalars(
            select(Preference).where(col(Preference.recipient_id) == recipient_id)
        )
    }
    in_force = blocks(session, recipient, now)
    unsubscribed_all = any(b["reason"] == SuppressionReason.UNSUBSCRIBE_ALL for b in in_force)
    everything = Toggle(
        key=GLOBAL_KEY,
        label="Send me reminder email",
        detail="Off stops every kind of reminder email below.",
        enabled=explicit.get(("global", ""), True) and not unsubscribed_all,
    )
    tasks = _tasks(session, recipient_id, explicit)
    return Listing(
        recipient_id=recipient_id,
        deleted=recipient.status == "deleted",
        everything=everything,
        topics=_topics(session, explicit),
        workspaces=_workspaces(session, recipient_id, explicit, tasks),
        tasks=[_task_toggle(task, workspace, explicit) for task, workspace in tasks],
        blocks=[_block(b, recipient.timezone) for b in in_force if not b["clears_on_resubscribe"]],
        local_time=LocalTime(recipient.timezone, recipient.quiet_start, recipient.quiet_end),
        address=masked_address(recipient.email),
    )


def masked_address(address: str | None) -> str | None:
    """``a•••@example.com``: enough to recognise one's own address, not to harvest it."""
    if not address or "@" not in address:
        return None
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}•••@{domain}"


def plan_changes(
    listing: Listing, shown: Set[str], on: Set[str]
) -> tuple[dict[str, Any], list[Change]]:
    """The ``PreferenceStore.patch`` body and the human list of what it changes.

    Keys the page did not show now (a rule removed since, a forged key) are ignored.
    """
    patch: dict[str, Any] = {}
    changes: list[Change] = []
    for key, toggle in listing.toggles().items():
        if key not in shown:
            continue
        wanted = key in on
        if wanted == toggle.enabled:
            continue
        kind, _, scope_id = key.partition(":")
        if kind == "global":
            patch["email_enabled"] = wanted
        else:
            patch.setdefault(_PATCH_FIELD[kind], {})[scope_id] = wanted
        changes.append(Change(toggle.label, toggle.detail, wanted))
    return patch, changes


def _topics(session: Session, explicit: dict[tuple[str, str], bool]) -> list[Toggle]:
    toggles = []
    for topic in session.scalars(select(Topic).order_by(col(Topic.key))):
        chosen = explicit.get(("topic", topic.key), topic.default_enabled)
        toggles.append(
            Toggle(
                key=f"topic:{topic.key}",
                label=topic.description or topic.key,
                detail="Always sent: you need these to use Time Plan." if topic.essential else None,
                enabled=True if topic.essential else chosen,
                locked=topic.essential,
            )
        )
    return toggles


def _tasks(
    session: Session, recipient_id: str, explicit: dict[tuple[str, str], bool]
) -> list[tuple[Task, Workspace | None]]:
    ids = _ruled_ids(session, recipient_id, col(ReminderRule.task_id))
    ids |= {scope_id for scope, scope_id in explicit if scope == "task"}
    if not ids:
        return []
    rows = list(session.scalars(select(Task).where(col(Task.id).in_(ids))))
    names = _workspace_rows(session, {task.workspace_id for task in rows})
    found = [(task, names.get(task.workspace_id)) for task in rows]
    return sorted(found, key=_task_order)


def _task_order(pair: tuple[Task, Workspace | None]) -> tuple[str, str, str]:
    task, workspace = pair
    return (workspace.name if workspace else "", task.title, task.id)


def _task_toggle(
    task: Task, workspace: Workspace | None, explicit: dict[tuple[str, str], bool]
) -> Toggle:
    detail = f"in {workspace.name}" if workspace else None
    if task.status != "open":
        detail = f"{detail}, {task.status}" if detail else task.status
    return Toggle(
        key=f"task:{task.id}",
        label=task.title,
        detail=detail,
        enabled=explicit.get(("task", task.id), True),
    )


def _workspaces(
    session: Session,
    recipient_id: str,
    explicit: dict[tuple[str, str], bool],
    tasks: list[tuple[Task, Workspace | None]],
) -> list[Toggle]:
    ids = _ruled_ids(session, recipient_id, col(ReminderRule.workspace_id))
    ids |= {task.workspace_id for task, _ in tasks}
    ids |= {scope_id for scope, scope_id in explicit if scope == "workspace"}
    rows = _workspace_rows(session, ids)
    return [
        Toggle(
            key=f"workspace:{row.id}",
            label=row.name,
            detail="every reminder and digest about this workspace",
            enabled=explicit.get(("workspace", row.id), True),
        )
        for row in sorted(rows.values(), key=lambda w: (w.name, w.id))
    ]


def _ruled_ids(session: Session, recipient_id: str, column: Any) -> set[str]:
    query = select(column).where(
        col(ReminderRule.recipient_id) == recipient_id,
        col(ReminderRule.active),
        column.is_not(None),
    )
    return {str(value) for value in session.scalars(query)}


def _workspace_rows(session: Session, ids: Iterable[str]) -> dict[str, Workspace]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.scalars(select(Workspace).where(col(Workspace.id).in_(wanted)))
    return {row.id: row for row in rows}


def _block(found: dict[str, Any], timezone: str) -> Block:
    until: datetime | None = found["until"]
    return Block(
        reason=found["reason"],
        explanation=_BLOCK_TEXT.get(found["reason"], _UNKNOWN_BLOCK),
        until=_local_date(until, timezone) if until is not None else None,
    )


def _local_date(instant: datetime, timezone: str) -> str:
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    return instant.astimezone(zone).date().isoformat()
