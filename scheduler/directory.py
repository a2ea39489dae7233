"""Recipients, workspaces and tasks: what the product backend registers (DESIGN §4).

Every write is an idempotent upsert in one short transaction. A task's due-date change
re-plans its relative rules and done/deleted cancels them, in the same transaction
(``rules.store.on_task_changed``), so a stale occurrence can never be sent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from scheduler.db import transaction
from scheduler.errors import InvalidInput, NotFound
from scheduler.inputs import RecipientIn, TaskIn, WorkspaceIn, validate
from scheduler.tables import Recipient, Suppression, Task, Workspace

TaskHook = Callable[[Session, Task, "datetime | None", str, datetime], None]


class Directory:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        on_task_changed: TaskHook | None = None,
    ) -> None:
        self._sessions = sessions
        self._on_task_changed = on_task_changed

    def upsert_recipient(self, recipient_id: str, data: object, *, now: datetime) -> Recipient:
        body = validate(RecipientIn, data)
        with transaction(self._sessions) as session:
            row = session.get(Recipient, recipient_id)
            if row is None:
                row = Recipient(id=recipient_id, created_at=now, updated_at=now)
                session.add(row)
            elif row.status == "deleted":
                # A deleted account that comes back is a new registration: its old
                # preferences are gone, its suppressions (keyed by address) remain.
                row.status = "active"
                row.deleted_at = None
                # Its deletion tombstone lapses (kept as history, no longer in force).
                session.execute(
                    update(Suppression)
                    .where(
                        col(Suppression.recipient_id) == recipient_id,
                        col(Suppression.reason) == "account_deleted",
                        col(Suppression.expires_at).is_(None),
                    )
                    .values(expires_at=now)
                )
            row.email = body.email
            row.name = body.name
            row.timezone = body.timezone
            row.locale = body.locale
            row.quiet_start = body.quiet_hours.start if body.quiet_hours else None
            row.quiet_end = body.quiet_hours.end if body.quiet_hours else None
            row.updated_at = now
            session.flush()
            return row

    def get_recipient(self, recipient_id: str) -> Recipient:
        with self._sessions() as session:
            row = session.get(Recipient, recipient_id)
            if row is None:
                raise NotFound(f"recipient {recipient_id!r} does not exist")
            return row

    def upsert_workspace(self, workspace_id: str, data: object, *, now: datetime) -> Workspace:
        body = validate(WorkspaceIn, data)
        with transaction(self._sessions) as session:
            row = session.get(Workspace, workspace_id) or Workspace(id=workspace_id, name="")
            row.name = body.name
            row.updated_at = now
            session.add(row)
            session.flush()
            return row

    def upsert_task(self, task_id: str, data: object, *, now: datetime) -> Task:
        body = validate(TaskIn, data)
        with transaction(self._sessions) as session:
            if session.get(Workspace, body.workspace_id) is None:
                raise InvalidInput(
                    f"workspace {body.workspace_id!r} does not exist", field="workspace_id"
                )
            row = session.get(Task, task_id)
            old_due = row.due_at if row is not None else None
            old_status = row.status if row is not None else "open"
            if row is None:
                row = Task(id=task_id, workspace_id=body.workspace_id, title=body.title)
                session.add(row)
            row.workspace_id = body.workspace_id
            row.title = body.title
            row.url = body.url
            row.due_at = body.due_at
            row.status = body.status
            row.updated_at = now
            session.flush()
            if self._on_task_changed is not None and (
                old_due != row.due_at or old_status != row.status
            ):
                self._on_task_changed(session, row, old_due, old_status, now)
            return row

    def get_task(self, task_id: str) -> Task:
        with self._sessions() as session:
            row = session.get(Task, task_id)
            if row is None:
                raise NotFound(f"task {task_id!r} does not exist")
            return row
