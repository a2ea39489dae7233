"""Retention: delete finished history so the hot tables stay small (DESIGN §2, §12).

Every claim query of the pipeline walks ``occurrence`` and ``message``; history that no
stage will touch again only makes those walks (and vacuum) slower. Occurrences and
messages in a final state older than ``retention_days`` are deleted, as are SES events
and transient-bounce evidence past the windows that still read them.

Deletion runs in bounded batches, one short transaction each, so it never holds row
locks or pins the xmin horizon long enough to slow the stages running beside it
(brandur.org/postgres-queues). Any number of workers may run it at once: a row deleted
by one is simply not found by another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, exists, select
from sqlalchemy.orm import Session, sessionmaker

from scheduler.db import transaction
from scheduler.preferences.suppression import SOFT_BOUNCE_WINDOW
from scheduler.tables import Message, Occurrence, SesEvent, TransientBounce

occurrence_t: Table = Occurrence.__table__  # type: ignore[attr-defined]
message_t: Table = Message.__table__  # type: ignore[attr-defined]
ses_event_t: Table = SesEvent.__table__  # type: ignore[attr-defined]
transient_bounce_t: Table = TransientBounce.__table__  # type: ignore[attr-defined]

# States no stage moves an occurrence out of (tables.Occurrence documents the flow).
FINAL_OCCURRENCE = ("sent", "blocked", "expired", "cancelled", "dropped", "failed")
# States no stage moves a message out of; ``sent`` still awaits SES's delivery or bounce
# event, which arrives within minutes or, for soft bounces, a few days: far inside N days.
FINAL_MESSAGE = (
    "sent",
    "failed",
    "cancelled",
    "expired",
    "delivered",
    "bounced",
    "complained",
    "rejected",
)
DEFAULT_BATCH = 1000


@dataclass
class RetentionReport:
    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


@dataclass
class Retention:
    sessions: sessionmaker[Session]
    days: int = 30
    batch_size: int = DEFAULT_BATCH
    # Lets a stopping worker end the clean-up between batches.
    stopping: Callable[[], bool] = lambda: False

    def run(self, now: datetime) -> RetentionReport:
        """Delete everything past retention as of ``now``, batch by batch."""
        cutoff = now - timedelta(days=self.days)
        # Transient bounces count towards the soft-bounce limit for SOFT_BOUNCE_WINDOW:
        # keep them at least that long whatever the retention setting.
        bounce_cutoff = now - max(timedelta(days=self.days), SOFT_BOUNCE_WINDOW)
        report = RetentionReport()
        # Occurrences first: they reference their message (occurrence.message_id).
        bounces = transient_bounce_t
        steps: list[tuple[str, Table, ColumnElement[bool]]] = [
            ("occurrence", occurrence_t, _old_occurrences(cutoff)),
            ("message", message_t, _old_messages(cutoff)),
            ("ses_event", ses_event_t, ses_event_t.c.received_at < cutoff),
            ("transient_bounce", bounces, bounces.c.bounced_at < bounce_cutoff),
        ]
        for name, table, condition in steps:
            report.deleted[name] = self._delete_in_batches(table, condition)
        return report

    def _delete_in_batches(self, table: Table, condition: ColumnElement[bool]) -> int:
        deleted = 0
        while not self.stopping():
            count = self._delete_batch(table, condition)
            deleted += count
            if count < self.batch_size:
                break
        return deleted

    def _delete_batch(self, table: Table, condition: ColumnElement[bool]) -> int:
        key: Any = table.c.id
        # ``DELETE ... WHERE id IN (SELECT id ... LIMIT n)``: both dialects accept it, and
        # the limit keeps each transaction short whatever the backlog.
        ids = select(key).where(condition).order_by(key).limit(self.batch_size)
        with transaction(self.sessions) as session:
            result = session.execute(delete(table).where(key.in_(ids.scalar_subquery())))
            return int(getattr(result, "rowcount", 0) or 0)


def _old_occurrences(cutoff: datetime) -> ColumnElement[bool]:
    return occurrence_t.c.status.in_(FINAL_OCCURRENCE) & (occurrence_t.c.created_at < cutoff)


def _old_messages(cutoff: datetime) -> ColumnElement[bool]:
    # A message still referenced by a kept occurrence (one not yet final, or younger than
    # the cutoff) stays, so the foreign key holds and explain can still show it.
    referenced = exists().where(occurrence_t.c.message_id == message_t.c.id)
    return message_t.c.status.in_(FINAL_MESSAGE) & (message_t.c.created_at < cutoff) & ~referenced
