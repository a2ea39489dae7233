"""Helpers for the preference tests: an App on the ``db`` fixture and a small world in it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from scheduler.app import App, build_app
from scheduler.clock import FixedClock
from scheduler.config import Settings
from scheduler.tables import Message, Occurrence
from tests.conftest import Database

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday
EMAIL = "Ann@Example.com"


def prefs_app(db: Database, tmp_path: Path, *, batch_window: int = 0) -> App:
    settings = Settings(
        database_url=db.url,
        database_schema=db.schema,
        outbox_dir=tmp_path / "outbox",
        signing_keys="test-key-0123456789abcdef",
        signing_key_file=tmp_path / "signing.key",
        batch_window_seconds=batch_window,
    )
    return build_app(settings, engine=db.engine, clock=FixedClock(T0))


def register(
    app: App,
    *,
    recipient: str = "r1",
    email: str = EMAIL,
    timezone: str = "UTC",
    quiet: tuple[str, str] | None = None,
    workspace: str = "w1",
    task: str = "t1",
    now: datetime = T0,
) -> None:
    """A recipient with one workspace and one open task."""
    body: dict[str, Any] = {"email": email, "timezone": timezone, "name": "Ann"}
    if quiet:
        body["quiet_hours"] = {"start": quiet[0], "end": quiet[1]}
    app.directory.upsert_recipient(recipient, body, now=now)
    app.directory.upsert_workspace(workspace, {"name": "Ops"}, now=now)
    app.directory.upsert_task(
        task, {"workspace_id": workspace, "title": "Renew the lease"}, now=now
    )


def add_rule(
    app: App,
    at: datetime,
    *,
    rule_id: str,
    recipient: str = "r1",
    task: str = "t1",
    topic: str = "task-reminder",
    now: datetime = T0,
) -> None:
    schedule = {"kind": "once", "at": at.isoformat()}
    app.rules.create(
        {
            "id": rule_id,
            "recipient_id": recipient,
            "task_id": task,
            "topic": topic,
            "schedule": schedule,
        },
        now=now,
    )


def occurrence(app: App, rule_id: str) -> Occurrence:
    with app.sessions() as session:
        rows = list(session.scalars(select(Occurrence).where(col(Occurrence.rule_id) == rule_id)))
    assert len(rows) == 1, rows
    return rows[0]


def messages(app: App) -> list[Message]:
    with app.sessions() as session:
        return list(session.scalars(select(Message).order_by(col(Message.id))))


def outbox(app: App) -> list[Path]:
    directory = app.settings.outbox_dir
    return sorted(directory.glob("*.eml")) if directory.exists() else []
