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

from sqlalchemy import func, or_, select, text, update
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
        groups: dict[tuple[str, str], list[Occurrence]] = defaultdict(list)
        for occ in items:
            groups[(occ.recipient_id, occ.topic)].append(occ)
        essential = {t.key: t.essential for t in session.scalars(select(Topic))}
        for (recipient_id, topic), group in groups.items():
            _lock_key(session, recipient_id, topic)
            _attach(
                session,
                group,
                window=window,
                max_items=max_items,
                now=now,
                essential=essential.get(topic, False),
                stream=stream,
                report=report,
            )
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


def _lock_key(session: Session, recipient_id: str, topic: str) -> None:
    if is_postgres(session):
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": f"batch:{recipient_id}:{topic}"},
        )


def _open_window(session: Session, recipient_id: str, topic: str) -> Message | None:
    query = (
        select(Message)
        .where(
            col(Message.recipient_id) == recipient_id,
            col(Message.topic) == topic,
            col(Message.status) == "collecting",
        )
        .order_by(col(Message.window_start).desc())
        .limit(1)
    )
    return session.scalars(query).first()


def _attach(
    session: Session,
    group: list[Occurrence],
    *,
    window: timedelta,
    max_items: int,
    now: datetime,
    essential: bool,
    stream: str,
    report: BatchReport,
) -> None:
    recipient_id, topic = group[0].recipient_id, group[0].topic
    message = _open_window(session, recipient_id, topic)
    for occ in group:
        assert occ.ready_at is not None
        if message is None or message.item_count >= max_items or occ.ready_at >= message.window_end:
            message = _new_window(
                session,
                recipient_id,
                topic,
                occ.ready_at,
                window,
                now,
                essential=essential,
                stream=stream,
            )
            report.opened += 1
        occ.message_id = message.id
        occ.status = "batched"
        message.item_count += 1
        # A message is "due" when its earliest item became sendable: the fire time, or the
        # end of the quiet window it was deferred to. Ramp priority and lateness count from
        # there, so mail held back by quiet hours is not expired for having waited.
        if message.due_at is None or occ.ready_at < message.due_at:
            message.due_at = occ.ready_at
        report.attached += 1
    session.flush()


def _new_window(
    session: Session,
    recipient_id: str,
    topic: str,
    start: datetime,
    window: timedelta,
    now: datetime,
    *,
    essential: bool,
    stream: str,
) -> Message:
    # Two windows of one key cannot share a start instant (unique row); a full window
    # followed at once by the next item opens the next one a microsecond later.
    latest = session.scalar(
        select(func.max(col(Message.window_start))).where(
            col(Message.recipient_id) == recipient_id, col(Message.topic) == topic
        )
    )
    if latest is not None and start <= latest:
        start = latest + TICK
    message = Message(
        recipient_id=recipient_id,
        topic=topic,
        stream=stream,
        window_start=start,
        window_end=start + window,
        status="collecting",
        essential=essential,
        created_at=now,
    )
    session.add(message)
    session.flush()
    return message


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
