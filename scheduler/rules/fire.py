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

Cost per batch on PostgreSQL: two statements. The claim (which also wakes snoozed
occurrences, so an idle tick is one round trip), then one statement that inserts the
occurrences and advances the rules from ``unnest``-ed arrays (the bulk shape
reference/scheduling-engines.md §5 recommends over per-row updates). Schedules are
parsed once per distinct JSON text, not once per row. SQLite gets the same effects with
plain statements (one writer, no row locks).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Row,
    Select,
    Text,
    bindparam,
    cast,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session, sessionmaker

from scheduler.db import transaction
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
        # Core statements on the session's connection: the ORM adds nothing here but
        # per-statement overhead, which is most of an idle tick's cost.
        conn = session.connection()
        rows = _claim(conn, now, batch_size)
        report = FireReport(claimed=len(rows))
        if not rows:
            return report
        fired: list[tuple[Row[Any], CatchUp | None]] = []
        for row in rows:
            result = _catch_up(row, now)
            fired.append((row, result))
            if result is not None and result.due_count:
                report.coalesced += result.due_count - 1
        if conn.dialect.name == "postgresql":
            report.fired = _write_postgres(conn, fired, now)
        else:
            report.fired = _write_sqlite(conn, fired, now)
    return report


def stored_state(anchor_local: str | None, remaining_count: int | None) -> RecurrenceState:
    """The recurrence state a rule row stores (see the module docstring)."""
    anchor = datetime.fromisoformat(anchor_local) if anchor_local else None
    return RecurrenceState(anchor_local=anchor, remaining_count=remaining_count)


def _claim(conn: Connection, now: datetime, limit: int) -> list[Row[Any]]:
    """Wake snoozed occurrences, then lock and read up to ``limit`` due rules.

    Only rule rows are locked; the recipient's zone and the task's due instant are read
    by scalar subqueries rather than joins, which keeps planning cheap (PostgreSQL plans
    this statement afresh on most calls: a generic plan cannot know how many rules are
    due). PostgreSQL re-checks a row another worker changed meanwhile and returns its
    latest version, so a rule advanced by a peer is not returned as due. On PostgreSQL
    the wake-up rides in the same statement as a data-modifying CTE (it runs to
    completion even when no rule is due), so an idle tick is one round trip.
    """
    params = {"now": now, "limit": limit}
    if conn.dialect.name == "postgresql":
        return list(conn.execute(_CLAIM_POSTGRES, params))
    conn.execute(_WAKE_SNOOZED, params)  # SQLite allows only SELECT in a CTE
    return list(conn.execute(_CLAIM, params))


def _claim_statement() -> Select[Any]:
    recipient_zone = (
        select(recipient_t.c.timezone)
        .where(recipient_t.c.id == rule_t.c.recipient_id)
        .scalar_subquery()
    )
    task_due = select(task_t.c.due_at).where(task_t.c.id == rule_t.c.task_id).scalar_subquery()
    due = bindparam("now", type_=rule_t.c.next_fire_at.type)
    return (
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
            recipient_zone.label("recipient_timezone"),
            task_due.label("due_at"),
        )
        .where(rule_t.c.active, rule_t.c.next_fire_at.is_not(None), rule_t.c.next_fire_at <= due)
        .order_by(rule_t.c.next_fire_at)
        # LIMIT as a literal (rendered per execution, cached per value): with a bound
        # LIMIT, PostgreSQL's generic plan assumes 10% of the due rules are wanted, its
        # cost passes jit_above_cost and every idle tick pays ~12 ms of JIT compilation.
        .limit(bindparam("limit", type_=Integer, literal_execute=True))
    )


# Built once: constructing these per call cost more than executing them when idle.
# A snoozed occurrence (``RuleStore.snooze``) becomes pending when its time comes.
_WAKE_SNOOZED = (
    update(occ_t)
    .where(
        occ_t.c.status == "snoozed",
        occ_t.c.fire_at <= bindparam("now", type_=occ_t.c.fire_at.type),
    )
    .values(status="pending")
)
_CLAIM = _claim_statement()
_CLAIM_POSTGRES = _CLAIM.add_cte(_WAKE_SNOOZED.returning(occ_t.c.id).cte("woken")).with_for_update(
    skip_locked=True, of=rule_t
)


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


def _next_values(result: CatchUp | None) -> tuple[Any, ...]:
    """(next_fire_at, anchor_local, remaining_count, fired at, coalesced) for one rule."""
    if result is None:
        return None, None, None, None, 0
    state, following = result.state, result.next
    return (
        following.fire_at if following else None,
        state.anchor_local.isoformat() if state.anchor_local else None,
        state.remaining_count,
        result.latest,
        max(result.due_count - 1, 0),
    )


# PostgreSQL: the batch's occurrences and rule updates in one statement, fed by arrays
# (one row per claimed rule). The INSERT reads recipient, topic and version from the rule
# rows this transaction holds locked; RETURNING counts only rows really inserted, so an
# instant that already fired (ON CONFLICT) is not counted. ``last_fired_at`` keeps its
# old value when nothing fired (a rule only re-planned).
_WRITE_POSTGRES = text(
    """
    WITH v AS (
        SELECT * FROM unnest(
            CAST(:ids AS varchar[]), CAST(:nexts AS timestamptz[]),
            CAST(:anchors AS varchar[]), CAST(:remainings AS integer[]),
            CAST(:fire_ats AS timestamptz[]), CAST(:coalesced AS integer[])
        ) AS v(id, next_fire_at, anchor_local, remaining_count, fire_at, coalesced)
    ), fired AS (
        INSERT INTO occurrence (rule_id, rule_version, recipient_id, topic, task_id,
                                workspace_id, fire_at, status, coalesced, created_at)
        SELECT r.id, r.version, r.recipient_id, r.topic, r.task_id, r.workspace_id,
               v.fire_at, 'pending', v.coalesced, :now
        FROM v JOIN reminder_rule AS r ON r.id = v.id
        WHERE v.fire_at IS NOT NULL
        ON CONFLICT (rule_id, fire_at) DO NOTHING
        RETURNING 1
    ), advanced AS (
        UPDATE reminder_rule AS r
        SET next_fire_at = v.next_fire_at,
            anchor_local = v.anchor_local,
            remaining_count = v.remaining_count,
            last_fired_at = COALESCE(v.fire_at, r.last_fired_at),
            updated_at = :now
        FROM v
        WHERE r.id = v.id
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM fired) AS fired, (SELECT count(*) FROM advanced) AS advanced
    """
)


def _write_postgres(
    conn: Connection, fired: list[tuple[Row[Any], CatchUp | None]], now: datetime
) -> int:
    values = [_next_values(result) for _, result in fired]
    columns = list(zip(*values, strict=True))
    counts = conn.execute(
        _WRITE_POSTGRES,
        {
            "ids": [row.id for row, _ in fired],
            "nexts": list(columns[0]),
            "anchors": list(columns[1]),
            "remainings": list(columns[2]),
            "fire_ats": list(columns[3]),
            "coalesced": list(columns[4]),
            "now": now,
        },
    ).one()
    return int(counts.fired)


def _write_sqlite(
    conn: Connection, fired: list[tuple[Row[Any], CatchUp | None]], now: datetime
) -> int:
    occurrences, advances = [], []
    for row, result in fired:
        following, anchor, remaining, fire_at, coalesced = _next_values(result)
        if fire_at is not None:
            occurrences.append(
                {
                    "rule_id": row.id,
                    "rule_version": row.version,
                    "recipient_id": row.recipient_id,
                    "topic": row.topic,
                    "task_id": row.task_id,
                    "workspace_id": row.workspace_id,
                    "fire_at": fire_at,
                    "status": "pending",
                    "coalesced": coalesced,
                    "created_at": now,
                }
            )
        advances.append(
            {
                "b_id": row.id,
                "b_next": following,
                "b_anchor": anchor,
                "b_remaining": remaining,
                "b_last": fire_at,
                "b_now": now,
            }
        )
    inserted = 0
    if occurrences:
        statement = (
            sqlite.insert(occ_t)
            .on_conflict_do_nothing(index_elements=["rule_id", "fire_at"])
            .returning(occ_t.c.id)
        )
        # RETURNING yields only the rows inserted: an instant already fired is not counted.
        inserted = len(conn.execute(statement, occurrences).all())
    conn.execute(
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
    return inserted
