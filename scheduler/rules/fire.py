"""FIRE stage: claim due rules, record one occurrence each, advance ``next_fire_at``.

One transaction per batch (DESIGN §5): on PostgreSQL the due rules are claimed with
``FOR UPDATE SKIP LOCKED`` so any number of workers share the table; the occurrence is
inserted with ``ON CONFLICT DO NOTHING`` on (rule_id, fire_at) in the same transaction
that advances the rule, so an instant fires once even if two paths reach it. Missed
instants of one rule (downtime) coalesce into one occurrence at the latest of them; the
DECIDE stage then expires it if it is past its topic's ``max_lateness``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from scheduler.db import is_postgres, transaction
from scheduler.rules.recurrence import Planned, RecurrenceState, next_fire_at
from scheduler.rules.schedules import parse_schedule
from scheduler.rules.timezones import resolve_zone
from scheduler.tables import Occurrence, Recipient, ReminderRule, Task

MAX_CATCH_UP = 10_000  # instants walked for one rule in one pass; the minimum interval bounds it

rule_t = ReminderRule.__table__  # type: ignore[attr-defined]
occ_t = Occurrence.__table__  # type: ignore[attr-defined]
recipient_t = Recipient.__table__  # type: ignore[attr-defined]
task_t = Task.__table__  # type: ignore[attr-defined]


@dataclass
class FireReport:
    claimed: int = 0
    fired: int = 0
    coalesced: int = 0


def fire_due(
    sessions: sessionmaker[Session], *, now: datetime, batch_size: int = 500
) -> FireReport:
    """Fire one batch of due rules as of ``now``; call again while ``claimed`` is full."""
    with transaction(sessions) as session:
        _wake_snoozed(session, now)
        rows = _claim(session, now, batch_size)
        report = FireReport(claimed=len(rows))
        if not rows:
            return report
        occurrences: list[dict[str, Any]] = []
        advances: list[dict[str, Any]] = []
        for row in rows:
            instants, planned = _advance(row, now)
            occurrences.append(_occurrence(row, instants, now))
            advances.append(_rule_update(row, planned, instants[-1], now))
            report.coalesced += len(instants) - 1
        report.fired = _insert_occurrences(session, occurrences)
        session.execute(
            update(rule_t)
            .where(rule_t.c.id == bindparam("b_id"))
            .values(
                next_fire_at=bindparam("b_next"),
                anchor_local=bindparam("b_anchor"),
                remaining_count=bindparam("b_remaining"),
                last_fired_at=bindparam("b_last"),
                updated_at=bindparam("b_now"),
            ),
            advances,
        )
    return report


def _wake_snoozed(session: Session, now: datetime) -> None:
    """A snoozed occurrence (``RuleStore.snooze``) becomes pending when its time comes."""
    session.execute(
        update(occ_t)
        .where(occ_t.c.status == "snoozed", occ_t.c.fire_at <= now)
        .values(status="pending")
    )


def _claim(session: Session, now: datetime, limit: int) -> list[Row[Any]]:
    due = (
        select(rule_t.c.id)
        .where(rule_t.c.active, rule_t.c.next_fire_at.is_not(None), rule_t.c.next_fire_at <= now)
        .order_by(rule_t.c.next_fire_at)
        .limit(limit)
    )
    if is_postgres(session):
        due = due.with_for_update(skip_locked=True)
    ids = list(session.execute(due).scalars())
    if not ids:
        return []
    query = (
        select(
            rule_t.c.id,
            rule_t.c.recipient_id,
            rule_t.c.task_id,
            rule_t.c.workspace_id,
            rule_t.c.topic,
            rule_t.c.schedule,
            rule_t.c.next_fire_at,
            rule_t.c.anchor_local,
            rule_t.c.remaining_count,
            rule_t.c.version,
            recipient_t.c.timezone.label("recipient_timezone"),
            task_t.c.due_at,
        )
        .join(recipient_t, recipient_t.c.id == rule_t.c.recipient_id)
        .outerjoin(task_t, task_t.c.id == rule_t.c.task_id)
        .where(rule_t.c.id.in_(ids))
        .order_by(rule_t.c.next_fire_at)
    )
    return list(session.execute(query))


def stored_state(anchor_local: str | None, remaining_count: int | None) -> RecurrenceState:
    anchor = datetime.fromisoformat(anchor_local) if anchor_local else None
    return RecurrenceState(anchor_local=anchor, remaining_count=remaining_count)


def _advance(row: Row[Any], now: datetime) -> tuple[list[datetime], Planned | None]:
    """All instants due at ``now`` (stored first, then any missed) and the next one after."""
    schedule = parse_schedule(row.schedule)
    zone = resolve_zone(getattr(schedule, "timezone", None) or row.recipient_timezone)
    instants = [row.next_fire_at]
    state = stored_state(row.anchor_local, row.remaining_count)
    planned = next_fire_at(schedule, zone=zone, after=instants[-1], state=state, due_at=row.due_at)
    while planned is not None and planned.fire_at <= now and len(instants) < MAX_CATCH_UP:
        instants.append(planned.fire_at)
        planned = next_fire_at(
            schedule, zone=zone, after=planned.fire_at, state=planned.state, due_at=row.due_at
        )
    return instants, planned


def _occurrence(row: Row[Any], instants: list[datetime], now: datetime) -> dict[str, Any]:
    return {
        "rule_id": row.id,
        "rule_version": row.version,
        "recipient_id": row.recipient_id,
        "topic": row.topic,
        "task_id": row.task_id,
        "workspace_id": row.workspace_id,
        "fire_at": instants[-1],
        "status": "pending",
        "coalesced": len(instants) - 1,
        "created_at": now,
    }


def _rule_update(
    row: Row[Any], planned: Planned | None, last: datetime, now: datetime
) -> dict[str, Any]:
    anchor = planned.state.anchor_local if planned else None
    return {
        "b_id": row.id,
        "b_next": planned.fire_at if planned else None,
        "b_anchor": anchor.isoformat() if anchor else None,
        "b_remaining": planned.state.remaining_count if planned else None,
        "b_last": last,
        "b_now": now,
    }


def _insert_occurrences(session: Session, values: list[dict[str, Any]]) -> int:
    dialect = postgresql if is_postgres(session) else sqlite
    statement = (
        dialect.insert(occ_t)
        .on_conflict_do_nothing(index_elements=["rule_id", "fire_at"])
        .returning(occ_t.c.id)
    )
    # RETURNING yields only the rows inserted, so a conflict (already fired) is not counted.
    return len(session.execute(statement, values).all())
