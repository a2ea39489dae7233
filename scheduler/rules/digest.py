"""What a workspace digest collects: the workspace's open tasks due today or overdue.

"Today" is the recipient's local day at the moment the digest is built, so a digest at
08:00 in Tokyo lists what is due before midnight in Tokyo.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from scheduler.rules.timezones import local_to_utc
from scheduler.tables import Task

DIGEST_LIMIT = 200


def end_of_local_day(now: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant the recipient's current local day ends (DST days included)."""
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    return local_to_utc(datetime.combine(tomorrow, time(0, 0)), zone)


def digest_tasks(
    session: Session, workspace_id: str, *, zone: ZoneInfo, now: datetime
) -> list[Task]:
    """Open tasks of the workspace due before the end of the recipient's day, oldest first."""
    query = (
        select(Task)
        .where(
            col(Task.workspace_id) == workspace_id,
            col(Task.status) == "open",
            col(Task.due_at).is_not(None),
            col(Task.due_at) < end_of_local_day(now, zone),
        )
        .order_by(col(Task.due_at), col(Task.id))
        .limit(DIGEST_LIMIT)
    )
    return list(session.scalars(query))
