"""Explain: "what would be sent to this recipient in [start, end), and why not?" (DESIGN §6).

Support staff ask this in one call. The answer merges two sources:

- occurrences already recorded in the range, with the decision stored when they were
  decided (and what the send stage did since: sent, dropped at the re-check, cancelled);
- instants the recipient's active rules will fire at in the range, evaluated with the
  one evaluator (``resolve``) as of that instant, with today's preferences and
  suppressions. A prediction cannot know tomorrow's unsubscribes or the ramp limit, so
  ``ramp`` never appears in a predicted item.

Ranges are capped at ``MAX_RANGE`` and answers at ``MAX_ITEMS`` (earliest first), so an
hourly rule cannot turn one support question into a denial of service.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from scheduler.clock import utc
from scheduler.errors import InvalidInput, NotFound
from scheduler.preferences.decision import Layer, Outcome
from scheduler.preferences.views import RecipientContext, late_reason, load_contexts, load_topics
from scheduler.rules.fire import stored_state
from scheduler.rules.recurrence import next_fire_at
from scheduler.rules.schedules import parse_schedule
from scheduler.rules.timezones import resolve_zone
from scheduler.tables import Message, Occurrence, ReminderRule, Task, Topic

MAX_RANGE = timedelta(days=90)
MAX_ITEMS = 1000
MAX_WALK = 20_000  # instants walked per rule to reach the range (bounded by MAX_RANGE)

# Stored occurrence status → explain's decision, for statuses that end an occurrence.
_STORED_DECISION = {
    "ready": Outcome.SEND,
    "batched": Outcome.SEND,
    "sent": Outcome.SEND,
    "deferred": Outcome.DEFERRED,
    "blocked": Outcome.BLOCKED,
    "expired": Outcome.EXPIRED,
    "cancelled": Outcome.BLOCKED,
    "dropped": Outcome.BLOCKED,
    "failed": Outcome.BLOCKED,
}


@dataclass(frozen=True)
class ExplainItem:
    """One occurrence, recorded (``status`` is its stored status) or predicted (``None``)."""

    rule_id: str
    fire_at: datetime
    decision: str
    layer: str | None
    reason: str
    send_at: datetime | None
    status: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The §13 JSON item (instants as ISO 8601 UTC with ``Z``)."""
        return {
            "rule_id": self.rule_id,
            "fire_at": _iso(self.fire_at),
            "decision": self.decision,
            "layer": self.layer,
            "reason": self.reason,
            "send_at": _iso(self.send_at) if self.send_at else None,
            "status": self.status,
        }


@dataclass(frozen=True)
class _Question:
    """One explain call, checked: whose occurrences, in [start, end), asked at ``now``."""

    recipient_id: str
    start: datetime
    end: datetime
    now: datetime
    ctx: RecipientContext
    topics: dict[str, Topic]


def explain(
    sessions: sessionmaker[Session],
    recipient_id: str,
    *,
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[ExplainItem]:
    """Every occurrence for ``recipient_id`` firing in [start, end), earliest first."""
    start, end, now = _checked_range(start, end, now)
    with sessions() as session:
        ctx = load_contexts(session, [recipient_id])[recipient_id]
        if ctx.recipient is None:
            raise NotFound(f"recipient {recipient_id!r} does not exist")
        question = _Question(recipient_id, start, end, now, ctx, load_topics(session))
        items = _recorded(session, question)
        seen = {(item.rule_id, item.fire_at) for item in items}
        for item in _predicted(session, question):
            if (item.rule_id, item.fire_at) not in seen:
                items.append(item)
    items.sort(key=lambda i: (i.fire_at, i.rule_id))
    return items[:MAX_ITEMS]


def _checked_range(
    start: datetime, end: datetime, now: datetime
) -> tuple[datetime, datetime, datetime]:
    for name, value in (("from", start), ("to", end)):
        if value.tzinfo is None:
            raise InvalidInput("an instant without an offset is refused", field=name)
    start, end = utc(start), utc(end)
    if end <= start:
        raise InvalidInput("must be after 'from'", field="to")
    if end - start > MAX_RANGE:
        raise InvalidInput(f"the range may span at most {MAX_RANGE.days} days", field="to")
    return start, end, utc(now)


# --- recorded occurrences ---------------------------------------------------------------


def _recorded(session: Session, question: _Question) -> list[ExplainItem]:
    query = (
        select(Occurrence, Message)
        .outerjoin(Message, col(Message.id) == col(Occurrence.message_id))
        .where(
            col(Occurrence.recipient_id) == question.recipient_id,
            col(Occurrence.fire_at) >= question.start,
            col(Occurrence.fire_at) < question.end,
        )
        .order_by(col(Occurrence.fire_at), col(Occurrence.id))
        .limit(MAX_ITEMS)
    )
    items = []
    for occ, message in session.execute(query).tuples():
        decision = _STORED_DECISION.get(occ.status)
        if decision is None:  # pending or snoozed: not decided yet, so predict it
            items.append(
                _predict(
                    question,
                    occ.rule_id,
                    occ.fire_at,
                    occ.topic,
                    occ.workspace_id,
                    occ.task_id,
                    status=occ.status,
                )
            )
            continue
        if occ.layer == Layer.QUIET_HOURS and decision is Outcome.SEND:
            decision = Outcome.DEFERRED  # sent, but only once the quiet window ended
        items.append(
            ExplainItem(
                rule_id=occ.rule_id,
                fire_at=occ.fire_at,
                decision=decision.value,
                layer=occ.layer,
                reason=_stored_reason(occ, message),
                send_at=_stored_send_at(occ, message, decision),
                status=occ.status,
            )
        )
    return items


def _stored_reason(occ: Occurrence, message: Message | None) -> str:
    if occ.status == "failed":
        return "the email provider refused the message" + (
            f": {message.error}" if message is not None and message.error else ""
        )
    if occ.status in ("batched", "sent") and occ.layer != Layer.QUIET_HOURS:
        return "sent" if occ.status == "sent" else "waiting in a batch to be sent"
    return occ.reason or ""


def _stored_send_at(occ: Occurrence, message: Message | None, decision: Outcome) -> datetime | None:
    if decision not in (Outcome.SEND, Outcome.DEFERRED):
        return None
    if message is not None:
        return message.sent_at or max(message.window_end, occ.ready_at or message.window_end)
    return occ.ready_at


# --- predicted occurrences --------------------------------------------------------------


def _predicted(session: Session, question: _Question) -> Iterator[ExplainItem]:
    rules = session.scalars(
        select(ReminderRule)
        .where(
            col(ReminderRule.recipient_id) == question.recipient_id,
            col(ReminderRule.active),
            col(ReminderRule.next_fire_at).is_not(None),
            col(ReminderRule.next_fire_at) < question.end,
        )
        .order_by(col(ReminderRule.id))
    )
    for rule in list(rules):
        task = session.get(Task, rule.task_id) if rule.task_id else None
        if task is not None and task.status != "open":
            continue  # the rule is about to be retired with its task
        for fire_at in _instants(rule, question, task):
            yield _predict(question, rule.id, fire_at, rule.topic, rule.workspace_id, rule.task_id)


def _instants(rule: ReminderRule, question: _Question, task: Task | None) -> Iterator[datetime]:
    """The rule's fire instants in [start, end), walked from its stored next instant."""
    ctx, start, end = question.ctx, question.start, question.end
    assert rule.next_fire_at is not None
    assert ctx.recipient is not None
    schedule = parse_schedule(rule.schedule)
    zone = resolve_zone(getattr(schedule, "timezone", None) or ctx.recipient.timezone)
    due_at = task.due_at if task is not None else None
    fire_at, state = rule.next_fire_at, stored_state(rule.anchor_local, rule.remaining_count)
    found = 0
    for _ in range(MAX_WALK):
        if fire_at >= end or found >= MAX_ITEMS:
            return
        if fire_at >= start:
            found += 1
            yield fire_at
        planned = next_fire_at(schedule, zone=zone, after=fire_at, state=state, due_at=due_at)
        if planned is None:
            return
        fire_at, state = planned.fire_at, planned.state


def _predict(
    question: _Question,
    rule_id: str,
    fire_at: datetime,
    topic_key: str,
    workspace_id: str | None,
    task_id: str | None,
    *,
    status: str | None = None,
) -> ExplainItem:
    """Decide an occurrence as the decide stage will: at its instant, or now if overdue."""
    ctx, topic = question.ctx, question.topics[topic_key]
    at = max(fire_at, question.now)
    if (late := late_reason(topic, fire_at, at)) is not None:
        return ExplainItem(
            rule_id, fire_at, Outcome.EXPIRED.value, Layer.LATENESS.value, late, None, status
        )
    decision = ctx.decide(topic, workspace_id=workspace_id, task_id=task_id, now=at)
    return ExplainItem(
        rule_id=rule_id,
        fire_at=fire_at,
        decision=decision.outcome.value,
        layer=decision.layer.value if decision.layer else None,
        reason=decision.reason,
        send_at=decision.send_at,
        status=status,
    )


def _iso(instant: datetime) -> str:
    return utc(instant).isoformat().replace("+00:00", "Z")
