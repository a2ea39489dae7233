"""Helpers for the rule tests: a small world, rules created through the store, and reads.

Everything goes through the real ``App`` (store, directory, pipeline) built by the
``make_app`` fixture on both dialects; only the assertions read tables directly.
"""

from __future__ import annotations

import email
import email.message
import email.policy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col

from scheduler.app import App
from scheduler.tables import Occurrence, ReminderRule

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # a Monday


def world(
    app: App,
    *,
    timezone: str = "UTC",
    due_at: datetime | None = None,
    now: datetime = T0,
    email_addr: str = "ann@example.com",
) -> None:
    """Recipient r1 (in ``timezone``), workspace w1 and its open task t1."""
    app.directory.upsert_recipient(
        "r1", {"email": email_addr, "timezone": timezone, "name": "Ann"}, now=now
    )
    app.directory.upsert_workspace("w1", {"name": "Launch"}, now=now)
    task(app, "t1", due_at=due_at, now=now)


def task(
    app: App,
    task_id: str,
    *,
    due_at: datetime | None,
    status: str = "open",
    title: str | None = None,
    workspace: str = "w1",
    now: datetime = T0,
) -> None:
    app.directory.upsert_task(
        task_id,
        {
            "workspace_id": workspace,
            "title": title or f"Task {task_id}",
            "url": f"https://app.example/{task_id}",
            "due_at": due_at.isoformat() if due_at else None,
            "status": status,
        },
        now=now,
    )


def add_rule(
    app: App,
    schedule: dict[str, Any],
    *,
    now: datetime = T0,
    rule_id: str = "rule-1",
    task_id: str | None = "t1",
    workspace_id: str | None = None,
    topic: str = "task-reminder",
) -> ReminderRule:
    body: dict[str, Any] = {
        "id": rule_id,
        "recipient_id": "r1",
        "topic": topic,
        "schedule": schedule,
    }
    if workspace_id is not None:
        body["workspace_id"] = workspace_id
    else:
        body["task_id"] = task_id
    rule, created = app.rules.create(body, now=now)
    assert created
    return rule


def stored_rule(app: App, rule_id: str = "rule-1") -> ReminderRule:
    with app.sessions() as session:
        rule = session.get(ReminderRule, rule_id)
        assert rule is not None
        return rule


def occurrences(app: App, rule_id: str | None = None) -> list[Occurrence]:
    query = select(Occurrence).order_by(col(Occurrence.fire_at), col(Occurrence.id))
    if rule_id is not None:
        query = query.where(col(Occurrence.rule_id) == rule_id)
    with app.sessions() as session:
        return list(session.scalars(query))


def rule_count(app: App) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(ReminderRule)) or 0)


def fire_through(app: App, rule_id: str = "rule-1", *, steps: int) -> list[datetime]:
    """Fire the rule at each stored ``next_fire_at`` in turn; the instants it fired at.

    Each firing runs the real FIRE stage exactly at the planned instant, so the list is
    the stored sequence the engine follows (re-anchored on every occurrence).
    """
    fired: list[datetime] = []
    for _ in range(steps):
        planned = stored_rule(app, rule_id).next_fire_at
        if planned is None:
            break
        report = app.pipeline.fire(planned)
        assert report.fired == 1, report
        fired.append(planned)
    return fired


def outbox(app: App) -> list[email.message.EmailMessage]:
    directory = Path(app.settings.outbox_dir)
    paths = sorted(directory.glob("*.eml")) if directory.exists() else []
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in paths
    ]


def text_body(message: email.message.EmailMessage) -> str:
    part = message.get_body(("plain",))
    assert part is not None
    content: str = part.get_content()  # type: ignore[attr-defined]
    return content
