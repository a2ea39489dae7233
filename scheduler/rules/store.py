"""Rule store: register, read, change and retire reminder rules (DESIGN §5, §13).

A rule is validated completely before anything is written; its first ``next_fire_at`` is
computed in the same transaction that stores it. Changing a rule bumps its ``version``,
so an occurrence fired under the old version is cancelled before it can be sent.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import Field, model_validator
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from scheduler.db import transaction
from scheduler.errors import Conflict, InvalidInput, NotFound
from scheduler.inputs import Id, Strict, validate
from scheduler.rules.recurrence import Planned, next_fire_at
from scheduler.rules.schedules import Schedule, parse_schedule, schedule_to_json, validate_schedule
from scheduler.rules.timezones import resolve_zone
from scheduler.tables import Occurrence, Recipient, ReminderRule, Task, Topic, Workspace


class RuleIn(Strict):
    id: Id | None = None
    recipient_id: Id
    task_id: Id | None = None
    workspace_id: Id | None = None
    topic: Annotated[str, Field(min_length=1, max_length=64)] = "task-reminder"
    schedule: dict[str, Any]

    @model_validator(mode="after")
    def _one_target(self) -> RuleIn:
        if (self.task_id is None) == (self.workspace_id is None):
            raise ValueError("give exactly one of task_id or workspace_id")
        return self


class RulePatch(Strict):
    schedule: dict[str, Any] | None = None
    topic: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    active: bool | None = None


class SnoozeIn(Strict):
    minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)]


class RuleStore:
    def __init__(
        self, sessions: sessionmaker[Session], *, min_interval: timedelta = timedelta(minutes=5)
    ) -> None:
        self._sessions = sessions
        self._min_interval = min_interval

    # --- create / read -------------------------------------------------------------

    def create(self, data: object, *, now: datetime) -> tuple[ReminderRule, bool]:
        """Store a rule; returns (rule, created). Same id and content again: (rule, False)."""
        body = validate(RuleIn, data)
        schedule = parse_schedule(body.schedule)
        with transaction(self._sessions) as session:
            if body.id is not None and (existing := session.get(ReminderRule, body.id)):
                return self._same_or_conflict(existing, body, schedule), False
            recipient, task = self._targets(session, body)
            planned = self._first(schedule, recipient, task, now)
            rule = ReminderRule(
                id=body.id or secrets.token_hex(12),
                recipient_id=body.recipient_id,
                task_id=body.task_id,
                workspace_id=body.workspace_id or (task.workspace_id if task else None),
                topic=body.topic,
                schedule=schedule_to_json(schedule),
                created_at=now,
                updated_at=now,
            )
            _apply_plan(rule, planned)
            session.add(rule)
            session.flush()
            return rule, True

    def get(self, rule_id: str) -> ReminderRule:
        with self._sessions() as session:
            rule = session.get(ReminderRule, rule_id)
            if rule is None:
                raise NotFound(f"rule {rule_id!r} does not exist")
            return rule

    def list_for_recipient(
        self, recipient_id: str, *, after: str | None = None, limit: int = 50
    ) -> Sequence[ReminderRule]:
        query = select(ReminderRule).where(col(ReminderRule.recipient_id) == recipient_id)
        if after:
            query = query.where(col(ReminderRule.id) > after)
        with self._sessions() as session:
            return list(session.scalars(query.order_by(col(ReminderRule.id)).limit(limit)))

    # --- change -------------------------------------------------------------------

    def patch(self, rule_id: str, data: object, *, now: datetime) -> ReminderRule:
        body = validate(RulePatch, data)
        with transaction(self._sessions) as session:
            rule = session.get(ReminderRule, rule_id, with_for_update=True)
            if rule is None:
                raise NotFound(f"rule {rule_id!r} does not exist")
            if body.topic is not None:
                _require_topic(session, body.topic)
                rule.topic = body.topic
            if body.active is not None:
                rule.active = body.active
            schedule = parse_schedule(body.schedule if body.schedule else rule.schedule)
            recipient = session.get(Recipient, rule.recipient_id)
            task = session.get(Task, rule.task_id) if rule.task_id else None
            assert recipient is not None
            if body.schedule is not None:
                rule.schedule = schedule_to_json(schedule)
            _apply_plan(
                rule, self._first(schedule, recipient, task, now, check=body.schedule is not None)
            )
            rule.version += 1
            rule.updated_at = now
            _cancel_pending(session, [rule.id], "the rule changed")
            session.flush()
            return rule

    def delete(self, rule_id: str, *, now: datetime) -> None:
        with transaction(self._sessions) as session:
            rule = session.get(ReminderRule, rule_id, with_for_update=True)
            if rule is None:
                raise NotFound(f"rule {rule_id!r} does not exist")
            rule.active = False
            rule.next_fire_at = None
            rule.version += 1
            rule.updated_at = now
            _cancel_pending(session, [rule.id], "the rule was deleted")

    def snooze(self, occurrence_id: int, data: object, *, now: datetime) -> Occurrence:
        """Fire an occurrence once more after ``minutes`` (RFC 9074-style snooze)."""
        body = validate(SnoozeIn, data)
        with transaction(self._sessions) as session:
            parent = session.get(Occurrence, occurrence_id)
            if parent is None:
                raise NotFound(f"occurrence {occurrence_id} does not exist")
            taken = session.scalar(
                select(Occurrence).where(col(Occurrence.snoozed_from) == parent.id)
            )
            if taken is not None:
                return taken  # a double tap snoozes once
            child = Occurrence(
                rule_id=parent.rule_id,
                rule_version=parent.rule_version,
                recipient_id=parent.recipient_id,
                topic=parent.topic,
                task_id=parent.task_id,
                workspace_id=parent.workspace_id,
                fire_at=now + timedelta(minutes=body.minutes),
                status="snoozed",
                snoozed_from=parent.id,
                created_at=now,
            )
            session.add(child)
            session.flush()
            return child

    # --- task lifecycle (called by the directory, inside its transaction) ----------

    def on_task_changed(
        self, session: Session, task: Task, old_due: datetime | None, old_status: str, now: datetime
    ) -> None:
        rules = list(
            session.scalars(
                select(ReminderRule).where(
                    col(ReminderRule.task_id) == task.id, col(ReminderRule.active)
                )
            )
        )
        if task.status != "open":
            for rule in rules:
                rule.active = False
                rule.next_fire_at = None
                rule.version += 1
                rule.updated_at = now
            _cancel_pending(session, [r.id for r in rules], f"the task is {task.status}")
            return
        recipient_zones = {
            r.id: r.timezone
            for r in session.scalars(
                select(Recipient).where(
                    col(Recipient.id).in_({rule.recipient_id for rule in rules})
                )
            )
        }
        for rule in rules:
            schedule = parse_schedule(rule.schedule)
            if schedule.kind != "relative":
                continue
            zone = resolve_zone(
                getattr(schedule, "timezone", None) or recipient_zones[rule.recipient_id]
            )
            # Re-plan from now: a due date moved into the past does not fire late.
            _apply_plan(rule, next_fire_at(schedule, zone=zone, after=now, due_at=task.due_at))
            rule.version += 1
            rule.updated_at = now
            _cancel_pending(session, [rule.id], "the task's due date changed")

    # --- helpers -------------------------------------------------------------------

    def _targets(self, session: Session, body: RuleIn) -> tuple[Recipient, Task | None]:
        recipient = session.get(Recipient, body.recipient_id)
        if recipient is None or recipient.status != "active":
            raise InvalidInput(
                f"recipient {body.recipient_id!r} does not exist", field="recipient_id"
            )
        _require_topic(session, body.topic)
        task = None
        if body.task_id is not None:
            task = session.get(Task, body.task_id)
            if task is None:
                raise InvalidInput(f"task {body.task_id!r} does not exist", field="task_id")
            if task.status != "open":
                raise InvalidInput(f"task {body.task_id!r} is {task.status}", field="task_id")
        elif session.get(Workspace, body.workspace_id) is None:
            raise InvalidInput(
                f"workspace {body.workspace_id!r} does not exist", field="workspace_id"
            )
        return recipient, task

    def _first(
        self,
        schedule: Schedule,
        recipient: Recipient,
        task: Task | None,
        now: datetime,
        *,
        check: bool = True,
    ) -> Planned | None:
        zone_name = getattr(schedule, "timezone", None) or recipient.timezone
        zone = resolve_zone(zone_name, field="schedule.timezone")
        if check:
            validate_schedule(schedule, zone=zone, now=now, min_interval=self._min_interval)
        due_at = task.due_at if task else None
        if schedule.kind == "relative" and task is None:
            raise InvalidInput("a relative schedule needs a task", field="schedule.kind")
        return next_fire_at(schedule, zone=zone, after=now, due_at=due_at)

    def _same_or_conflict(
        self, existing: ReminderRule, body: RuleIn, schedule: Schedule
    ) -> ReminderRule:
        same = (
            existing.recipient_id == body.recipient_id
            and existing.task_id == body.task_id
            and (body.workspace_id is None or existing.workspace_id == body.workspace_id)
            and existing.topic == body.topic
            and existing.schedule == schedule_to_json(schedule)
        )
        if not same:
            raise Conflict(f"rule {existing.id!r} exists with different content")
        return existing


def _require_topic(session: Session, key: str) -> None:
    if session.get(Topic, key) is None:
        raise InvalidInput(f"unknown topic {key!r}", field="topic")


def _apply_plan(rule: ReminderRule, planned: Planned | None) -> None:
    """Plan the rule afresh: its next instant, and no recurrence state.

    The stored state belongs to the rule's last *real* occurrence (the fire stage writes
    it, ``catch_up`` reads it); a new or changed plan has none, so the next firing walks
    the rule from its DTSTART once and counts COUNT from there, as RFC 5545 does.
    """
    rule.next_fire_at = planned.fire_at if planned else None
    rule.anchor_local = None
    rule.remaining_count = None


def _cancel_pending(session: Session, rule_ids: list[str], reason: str) -> None:
    """Occurrences not yet sent of these rules will not go out (stale after a change)."""
    if not rule_ids:
        return
    session.execute(
        update(Occurrence)
        .where(
            col(Occurrence.rule_id).in_(rule_ids),
            col(Occurrence.status).in_(("pending", "ready", "deferred", "snoozed")),
        )
        .values(status="cancelled", reason=reason)
    )
