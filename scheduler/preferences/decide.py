"""DECIDE stage: every fired (pending) occurrence gets a recorded decision (DESIGN §6).

Before the evaluator runs, three facts can end an occurrence: the rule changed after it
fired (stale version: cancelled), its task is done or deleted (cancelled), or it is later
than its topic's ``max_lateness`` (expired, layer ``lateness``). A workspace digest with
nothing to collect is dropped with that reason. Everything else goes to ``resolve``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from scheduler.db import is_postgres, transaction
from scheduler.preferences.decision import Layer, Outcome
from scheduler.preferences.views import RecipientContext, late_reason, load_contexts, load_topics
from scheduler.rules.digest import digest_tasks
from scheduler.rules.timezones import resolve_zone
from scheduler.tables import Occurrence, ReminderRule, Task, Topic


@dataclass
class DecideReport:
    decided: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_layer: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Verdict:
    status: str
    layer: str | None
    reason: str
    ready_at: datetime | None = None


def decide_pending(
    sessions: sessionmaker[Session], *, now: datetime, batch_size: int = 500
) -> DecideReport:
    report = DecideReport()
    with transaction(sessions) as session:
        query = (
            select(Occurrence)
            .where(col(Occurrence.status) == "pending")
            .order_by(col(Occurrence.fire_at))
            .limit(batch_size)
        )
        if is_postgres(session):
            query = query.with_for_update(skip_locked=True)
        occurrences = list(session.scalars(query))
        if not occurrences:
            return report
        contexts = load_contexts(session, (o.recipient_id for o in occurrences))
        topics = load_topics(session)
        rules = _by_id(session, ReminderRule, {o.rule_id for o in occurrences})
        tasks = _by_id(session, Task, {o.task_id for o in occurrences if o.task_id})
        for occ in occurrences:
            verdict = _verdict(session, occ, contexts[occ.recipient_id], topics, rules, tasks, now)
            occ.status, occ.layer, occ.reason = verdict.status, verdict.layer, verdict.reason
            occ.ready_at = verdict.ready_at
            occ.decided_at = now
            report.decided += 1
            report.by_status[verdict.status] += 1
            report.by_layer[verdict.layer or "none"] += 1
    return report


def _by_id(session: Session, model: Any, ids: set[str]) -> dict[str, object]:
    if not ids:
        return {}
    rows = session.scalars(select(model).where(col(model.id).in_(ids)))
    return {row.id: row for row in rows}


def _verdict(
    session: Session,
    occ: Occurrence,
    ctx: RecipientContext,
    topics: dict[str, Topic],
    rules: dict[str, object],
    tasks: dict[str, object],
    now: datetime,
) -> Verdict:
    rule = rules.get(occ.rule_id)
    if not isinstance(rule, ReminderRule) or not rule.active or rule.version != occ.rule_version:
        return Verdict("cancelled", None, "the rule changed or was removed after this fired")
    task = tasks.get(occ.task_id) if occ.task_id else None
    if isinstance(task, Task) and task.status != "open":
        return Verdict("cancelled", None, f"the task is {task.status}")
    topic = topics[occ.topic]
    if (late := late_reason(topic, occ.fire_at, now)) is not None:
        return Verdict(Outcome.EXPIRED, Layer.LATENESS, late)
    if occ.workspace_id and not occ.task_id and ctx.recipient is not None:
        zone = resolve_zone(ctx.recipient.timezone)
        if not digest_tasks(session, occ.workspace_id, zone=zone, now=now):
            return Verdict("dropped", None, "no open tasks due today or overdue in the workspace")
    decision = ctx.decide(topic, workspace_id=occ.workspace_id, task_id=occ.task_id, now=now)
    layer = decision.layer.value if decision.layer else None
    if decision.outcome is Outcome.SEND:
        return Verdict("ready", None, decision.reason, now)
    if decision.outcome is Outcome.DEFERRED:
        return Verdict("deferred", layer, decision.reason, decision.send_at)
    return Verdict(decision.outcome.value, layer, decision.reason)
