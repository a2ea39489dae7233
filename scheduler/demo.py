"""The embedded default's demo: one recipient, one workspace, two tasks, two rules due
within the next minute, so a newcomer sees a reminder ``.eml`` within two minutes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from scheduler.app import App
from scheduler.tables import Recipient

DEMO_RECIPIENT = "demo-user"


def seed_if_empty(app: App, *, now: datetime) -> bool:
    """Seed the demo into an empty database; returns False (and does nothing) otherwise."""
    with app.sessions() as session:
        if session.scalar(select(func.count()).select_from(Recipient)):
            return False
    app.directory.upsert_recipient(
        DEMO_RECIPIENT,
        {"email": "ada@example.com", "timezone": "Europe/Berlin", "locale": "en", "name": "Ada"},
        now=now,
    )
    app.directory.upsert_workspace("demo-workspace", {"name": "Launch plan"}, now=now)
    tasks = [
        ("demo-task-1", "Review the launch checklist", now + timedelta(hours=2)),
        ("demo-task-2", "Book the venue for the kick-off", now + timedelta(hours=5)),
    ]
    for task_id, title, due in tasks:
        app.directory.upsert_task(
            task_id,
            {
                "workspace_id": "demo-workspace",
                "title": title,
                "url": f"https://app.timeplan.example/tasks/{task_id}",
                "due_at": due.isoformat(),
            },
            now=now,
        )
    for offset, (task_id, _title, _due) in zip((20, 35), tasks, strict=True):
        at = (now + timedelta(seconds=offset)).replace(microsecond=0)
        app.rules.create(
            {
                "id": f"demo-rule-{task_id}",
                "recipient_id": DEMO_RECIPIENT,
                "task_id": task_id,
                "topic": "task-reminder",
                "schedule": {"kind": "once", "at": at.isoformat()},
            },
            now=now,
        )
    return True
