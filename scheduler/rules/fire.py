"""FIRE stage: claim due rules, record one occurrence each, advance ``next_fire_at``.

One transaction per batch (DESIGN §5): on PostgreSQL the due rules are claimed with
``FOR UPDATE SKIP LOCKED`` so any number of workers share the table; the occurrence is
inserted with ``ON CONFLICT DO NOTHING`` on (rule_id, fire_at) in the same transaction
that advances the rule, so an instant fires once even if two paths reach it. Missed
instants of one rule (downtime) coalesce into one occurrence at the latest of them
(:func:`~scheduler.rules.recurrence.catch_up`); the DECIDE stage then expires it if it
is past its topic's ``max_lateness``.

A rule stores ``next_fire_at`` with the :class:`RecurrenceState` *of its last real
occurrence* (``anchor_local`` = that occurrence's wall time, ``remaining_count`` = the
COUNT left after it; both empty before the first), which is what ``catch_up`` expects
next to the planned instant.

The hot path costs two round trips per batch beyond the claim: one multi-row INSERT of
the occurrences and one UPDATE of the rules (``unnest`` of arrays on PostgreSQL, the
shape reference/scheduling-engines.md §5 recommends), and schedules are parsed once per
distinct JSON text rather than once per row.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Row, Text, bindparam, cast, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from scheduler.db import is_postgres, transaction
from scheduler.errors import InvalidInput
from scheduler.rules.recurrence import CatchUp, RecurrenceState, catch_up
from scheduler.rules.schedules import Schedule, parse_schedule
from scheduler.rules.timezones import resolve_zone
from scheduler.tables import Occurrence, Recipient, ReminderRule, Task

log = logging.getLogger(__name__)

rule_t = ReminderRule.__table__  # type: ignore[attr-defined]
occ_t = Occurrence.__table__  # type: ignore[attr-defined]
recipient_t = Recipient.__table__  # type: ignore[attr-defined]
task_t = Task.__table__  # type: ignore[attr-defined]

# Only the latest missed instant is kept (the others are counted in ``coalesced``).
_KEEP_DUE = 1


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
            result = _catch_up(row, now)
            if result is not None and result.latest is not None:
                occurrences.append(_occurrence(row, result, now))
                report.coalesced += result.due_count - 1
            advances.append(_advance(row, result, now))
        if occurrences:
            report.fired = _insert_occurrences(session, occurrences)
        _store_advances(session, advances)
    return report


def stored_state(anchor_local: str | None, remaining_count: int | None) -> RecurrenceState:
    """The recurrence state a rule row stores (see the module docstring)."""
    anchor = datetime.fromisoformat(anchor_local) if anchor_local else None
    return RecurrenceState(anchor_local=anchor, remaining_count=remaining_count)


def _wake_snoozed(session: Session, now: datetime) -> None:
    """A snoozed occurrence (``RuleStore.snooze``) becomes pending when its time comes."""
    session.execute(
        update(occ_t)
        .where(occ_t.c.status == "snoozed", occ_t.c.fire_at <= now)
        .values(status="pending")
    )


def _claim(session: Session, now: datetime, limit: int) -> list[Row[Any]]:
    """Lock and read up to ``limit`` due rules in one statement.

    ``FOR UPDATE OF reminder_rule`` locks the rule rows only (the recipient and task are
    read, not claimed). PostgreSQL re-checks a row another worker changed meanwhile and
    returns its latest version, so a rule advanced by a peer is not returned as due.
    """
    query = (
        select(
            rule_t.c.id,
            rule_t.c.recipient_id,
            rule_t.c.task_id,
            rule_t.c.workspace_id,
            rule_t.c.topic,
            cast(rule_t.c.schedule, Text).label("schedule_json"),
            rule_t.c.next_fire_at,
            rule_t.c.anchor_local,
            rule_t.c.remaining_count,
            rule_t.c.version,
            recipient_t.c.timezone.label("recipient_timezone"),
            task_t.c.due_at,
        )
        .join(recipient_t, recipient_t.c.id == rule_t.c.recipient_id)
        .outerjoin(task_t, task_t.c.id == rule_t.c.task_id)
        .where(rule_t.c.active, rule_t.c.next_fire_at.is_not(None), rule_t.c.next_fire_at <= now)
        .order_by(rule_t.c.next_fire_at)
        .limit(limit)
    )
    if is_postgres(session):
        query = query.with_for_update(skip_locked=True, of=rule_t)
    return list(session.execute(query))


@lru_cache(maxsize=4096)
def _schedule(schedule_json: str) -> Schedule:
    """Parsed schedules by their stored JSON text: most rules share a handful of shapes.

    Schedules are frozen models, so one parsed object can serve every row with that text.
    """
    loaded: dict[str, Any] = json.loads(schedule_json)
    return parse_schedule(loaded)


def _catch_up(row: Row[Any], now: datetime) -> CatchUp | None:
    """What is due for this rule at ``now``; None if its stored schedule cannot be read."""
    try:
        schedule = _schedule(row.schedule_json)
        zone = resolve_zone(getattr(schedule, "timezone", None) or row.recipient_timezone)
    except (InvalidInput, ValueError):
        # A stored schedule the current code refuses must not wedge every batch behind
        # it: the rule stops (next_fire_at NULL) and says so once; it fires again when
        # it is patched with a valid schedule.
        log.warning("rule %s has an unreadable schedule; it will not fire", row.id)
        return None
    return catch_up(
        schedule,
        zone=zone,
        planned_at=row.next_fire_at,
        now=now,
        state=stored_state(row.anchor_local, row.remaining_count),
        due_at=row.due_at,
        limit=_KEEP_DUE,
    )


def _occurrence(row: Row[Any], result: CatchUp, now: datetime) -> dict[str, Any]:
    return {
        "rule_id": row.id,
        "rule_version": row.version,
        "recipient_id": row.recipient_id,
        "topic": row.topic,
        "task_id": row.task_id,
        "workspace_id": row.workspace_id,
        "fire_at": result.latest,
        "status": "pending",
        "coalesced": result.due_count - 1,
        "created_at": now,
    }


def _advance(row: Row[Any], result: CatchUp | None, now: datetime) -> dict[str, Any]:
    if result is None:
        state, following, last = RecurrenceState(), None, None
    else:
        state, following, last = result.state, result.next, result.latest
    return {
        "b_id": row.id,
        "b_next": following.fire_at if following else None,
        "b_anchor": state.anchor_local.isoformat() if state.anchor_local else None,
        "b_remaining": state.remaining_count,
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


# One statement for the whole batch: PostgreSQL joins the rules to arrays of new values.
# ``last_fired_at`` keeps its old value when nothing fired (a rule only re-planned).
_ADVANCE_UNNEST = text(
    """
    UPDATE reminder_rule AS r
    SET next_fire_at = v.next_fire_at,
        anchor_local = v.anchor_local,
        remaining_count = v.remaining_count,
        last_fired_at = COALESCE(v.last_fired_at, r.last_fired_at),
        updated_at = :now
    FROM unnest(
        CAST(:ids AS varchar[]), CAST(:nexts AS timestamptz[]), CAST(:anchors AS varchar[]),
        CAST(:remainings AS integer[]), CAST(:lasts AS timestamptz[])
    ) AS v(id, next_fire_at, anchor_local, remaining_count, last_fired_at)
    WHERE r.id = v.id
    """
)


def _store_advances(session: Session, advances: list[dict[str, Any]]) -> None:
    if is_postgres(session):
        session.execute(
            _ADVANCE_UNNEST,
            {
                "ids": [a["b_id"] for a in advances],
                "nexts": [a["b_next"] for a in advances],
                "anchors": [a["b_anchor"] for a in advances],
                "remainings": [a["b_remaining"] for a in advances],
                "lasts": [a["b_last"] for a in advances],
                "now": advances[0]["b_now"],
            },
        )
        return
    session.execute(
        update(rule_t)
        .where(rule_t.c.id == bindparam("b_id"))
        .values(
            next_fire_at=bindparam("b_next"),
            anchor_local=bindparam("b_anchor"),
            remaining_count=bindparam("b_remaining"),
            last_fired_at=func.coalesce(
                bindparam("b_last", type_=rule_t.c.last_fired_at.type), rule_t.c.last_fired_at
            ),
            updated_at=bindparam("b_now"),
        ),
        advances,
    )
