"""The stages in order, as one object the worker's jobs and ``reminders tick`` call.

Each stage method runs batches until it finds less than a full batch, and returns what it
did, so the worker can sleep only when a stage found no work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from scheduler.delivery.batch import BatchReport, batch_ready
from scheduler.delivery.send import SendReport, SendStage
from scheduler.preferences.decide import DecideReport, decide_pending
from scheduler.rules.fire import FireReport, fire_due

MAX_ROUNDS = 1000  # bounds one call even if rows keep arriving


@dataclass
class TickReport:
    fired: int = 0
    decided: int = 0
    batched: int = 0
    queued: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    by_status: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


@dataclass
class Pipeline:
    sessions: sessionmaker[Session]
    send_stage: SendStage
    batch_window: timedelta
    batch_max_items: int
    batch_size: int = 500
    # Expires the send backlog past its topics' max_lateness (the ramp store's step).
    expire_waiting: Callable[[datetime], int] | None = None

    def fire(self, now: datetime) -> FireReport:
        total = FireReport()
        for _ in range(MAX_ROUNDS):
            report = fire_due(self.sessions, now=now, batch_size=self.batch_size)
            total.claimed += report.claimed
            total.fired += report.fired
            total.coalesced += report.coalesced
            if report.claimed < self.batch_size:
                break
        return total

    def decide(self, now: datetime) -> DecideReport:
        total = DecideReport()
        for _ in range(MAX_ROUNDS):
            report = decide_pending(self.sessions, now=now, batch_size=self.batch_size)
            total.decided += report.decided
            total.by_status.update(report.by_status)
            total.by_layer.update(report.by_layer)
            if report.decided < self.batch_size:
                break
        return total

    def batch(self, now: datetime) -> BatchReport:
        total = BatchReport()
        for _ in range(MAX_ROUNDS):
            report = batch_ready(
                self.sessions,
                now=now,
                window=self.batch_window,
                max_items=self.batch_max_items,
                batch_size=self.batch_size,
            )
            total.attached += report.attached
            total.opened += report.opened
            total.queued += report.queued
            if report.attached < self.batch_size:
                break
        return total

    def send(self, now: datetime, limit: int = 100) -> SendReport:
        total = SendReport()
        if self.expire_waiting is not None:
            self.expire_waiting(now)
        for _ in range(MAX_ROUNDS):
            report = self.send_stage.run(now=now, limit=limit)
            for name in ("claimed", "sent", "retried", "failed", "cancelled"):
                setattr(total, name, getattr(total, name) + getattr(report, name))
            total.paused = total.paused or report.paused
            if report.claimed < limit or report.paused:
                break
        return total

    def tick(self, now: datetime) -> TickReport:
        """Every stage once, in order, as of ``now`` (``reminders tick --now``)."""
        fired = self.fire(now)
        decided = self.decide(now)
        batched = self.batch(now)
        sent = self.send(now)
        return TickReport(
            fired=fired.fired,
            decided=decided.decided,
            batched=batched.attached,
            queued=batched.queued,
            sent=sent.sent,
            retried=sent.retried,
            failed=sent.failed,
            cancelled=sent.cancelled,
            by_status=dict(decided.by_status),
        )
