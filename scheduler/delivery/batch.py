"""BATCH stage: ready occurrences join one message per (recipient, topic) window (DESIGN §7).

A window opens at its first ready item and closes ``window`` later or at ``max_items``;
then the message is queued for sending. Exactly one message exists per window: the row is
unique on (recipient, topic, window_start), and on PostgreSQL a transaction-scoped
advisory lock on the (recipient, topic) key serialises the workers that find the same
open window (SQLite has one writer anyway).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, text, tuple_, update
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from scheduler.db import is_postgres, transaction
from scheduler.tables import Message, Occurrence, Topic

TICK = timedelta(microseconds=1)


@dataclass
class BatchReport:
    attached: int = 0
    opened: int = 0
    queued: int = 0


Key = tuple[str, str]  # (recipient_id, topic)


def batch_ready(
    sessions: sessionmaker[Session],
    *,
    now: datetime,
    window: timedelta,
    max_items: int,
    batch_size: int = 500,
    stream: str = "transactional",
) -> BatchReport:
    report = BatchReport()
    with transaction(sessions) as session:
        items = _claim_ready(session, now, batch_size)
        groups: dict[Key, list[Occurrence]] = defaultdict(list)
        for occ in items:
            groups[(occ.recipient_id, occ.topic)].append(occ)
        if groups:
            keys = sorted(groups)
            _lock_keys(session, keys)
            essential = {t.key: t.essential for t in session.scalars(select(Topic))}
            windows = _Windows(session, keys, window=window, now=now, stream=stream)
            for key in keys:
                _attach(windows, groups[key], max_items, essential.get(key[1], False), report)
            # One flush inserts every new window (batched, ids returned), then the items
            # learn their message ids and a second flush updates them together.
            session.flush()
            for key in keys:
                for occ in groups[key]:
                    occ.message_id = windows.assigned[occ.id].id
            session.flush()
            report.opened = windows.opened
        report.queued = _close_windows(session, now=now, max_items=max_items)
    return report


def _claim_ready(session: Session, now: datetime, limit: int) -> list[Occurrence]:
    query = (
        select(Occurrence)
        .where(
            col(Occurrence.status).in_(("ready", "deferred")),
            col(Occurrence.ready_at) <= now,
            col(Occurrence.message_id).is_(None),
        )
        .order_by(col(Occurrence.ready_at), col(Occurrence.id))
        .limit(limit)
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True)
    return list(session.scalars(query))


def _lock_keys(session: Session, keys: list[Key]) -> None:
    """Serialise workers that batch the same (recipient, topic), one statement for all.

    The locks are taken in hash order, the same in every worker, so two workers whose
    batches share keys wait for each other instead of deadlocking.
    """
    if is_postgres(session):
        session.execute(
            text(
                "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT "
                "hashtextextended(k, 0) AS h FROM unnest(CAST(:keys AS text[])) AS k "
                "ORDER BY h) AS ordered"
            ),
            {"keys": [f"batch:{recipient_id}:{topic}" for recipient_id, topic in keys]},
        )


class _Windows:
    """The open window and latest window start of each key, read once for a batch."""

    def __init__(
        self, session: Session, keys: list[Key], *, window: timedelta, now: datetime, stream: str
    ) -> None:
        self.session = session
        self.window, self.now, self.stream = window, now, stream
        self.opened = 0
        self.assigned: dict[int | None, Message] = {}
        pairs = tuple_(col(Message.recipient_id), col(Message.topic)).in_(keys)
        self.open: dict[Key, Message] = {}
        collecting = select(Message).where(pairs, col(Message.status) == "collecting")
        for message in session.scalars(collecting.order_by(col(Message.window_start))):
            self.open[(message.recipient_id, message.topic)] = message  # the latest wins
        latest = select(
            col(Message.recipient_id), col(Message.topic), func.max(col(Message.window_start))
        ).where(pairs)
        self.latest: dict[Key, datetime] = {
            (r, t): start
            for r, t, start in session.execute(
                latest.group_by(col(Message.recipient_id), col(Message.topic))
            )
        }

    def new(self, key: Key, start: datetime, *, essential: bool) -> Message:
        # Two windows of one key cannot share a start instant (unique row); a full window
        # followed at once by the next item opens the next one a microsecond later.
        previous = self.latest.get(key)
        if previous is not None and start <= previous:
            start = previous + TICK
        message = Message(
            recipient_id=key[0],
            topic=key[1],
            stream=self.stream,
            window_start=start,
            window_end=start + self.window,
            status="collecting",
            essential=essential,
            created_at=self.now,
        )
        self.session.add(message)
        self.latest[key] = start
        self.open[key] = message
        self.opened += 1
        return message


def _attach(
    windows: _Windows,
    group: list[Occurrence],
    max_items: int,
    essential: bool,
    report: BatchReport,
) -> None:
    key = (group[0].recipient_id, group[0].topic)
    message = windows.open.get(key)
    for occ in group:
        assert occ.ready_at is not None
        if message is None or message.item_count >= max_items or occ.ready_at >= message.window_end:
            message = windows.new(key, occ.ready_at, essential=essential)
        windows.assigned[occ.id] = message
        occ.status = "batched"
        message.item_count = (message.item_count or 0) + 1
        # A message is "due" when its earliest item became sendable: the fire time, or the
        # end of the quiet window it was deferred to. Ramp priority and lateness count from
        # there, so mail held back by quiet hours is not expired for having waited.
        if message.due_at is None or occ.ready_at < message.due_at:
            message.due_at = occ.ready_at
        report.attached += 1


def _close_windows(session: Session, *, now: datetime, max_items: int) -> int:
    result = session.execute(
        update(Message)
        .where(
            col(Message.status) == "collecting",
            or_(col(Message.window_end) <= now, col(Message.item_count) >= max_items),
        )
        .values(status="queued", next_attempt_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)
