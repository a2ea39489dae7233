"""SEND stage: lease queued messages, compose them, hand them to the sender (DESIGN §7).

Delivery is at-least-once. A message moves queued → sending (leased until
``lease_until``) → sent in short transactions; the provider call happens outside any
transaction. A worker that dies mid-send leaves its lease to expire, and the message is
claimed again: at most the sends in flight can repeat. Sender errors arrive already
translated (``scheduler.errors``) and each maps to one outcome here.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from scheduler.db import is_postgres, transaction
from scheduler.delivery.compose import Composer
from scheduler.delivery.handoff import Handoff
from scheduler.delivery.retry import backoff_delay
from scheduler.delivery.send_day import count_sent
from scheduler.delivery.senders import OutgoingEmail, Sender
from scheduler.errors import MessageRejected, SenderMisconfigured, StreamPaused, Throttled
from scheduler.tables import Message, Occurrence

log = logging.getLogger(__name__)
message_t = Message.__table__  # type: ignore[attr-defined]

MAX_ATTEMPTS = 8
PAUSE_RETRY = timedelta(minutes=5)
# Successful hand-offs are recorded in groups of this many (one transaction each).
FINISH_EVERY = 20

# How many messages the ramp allows now (the ramp store's atomic grant); the default
# grants everything asked, for callers without a ramp (tests of the stage alone).
Grant = Callable[[Session, int, datetime], int]
OnPaused = Callable[[str, datetime], None]


def grant_all(_session: Session, requested: int, _now: datetime) -> int:
    return requested


@dataclass
class SendReport:
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    paused: bool = False
    errors: list[str] = field(default_factory=list)


@dataclass
class SendStage:
    sessions: sessionmaker[Session]
    sender: Sender
    composer: Composer
    worker_id: str
    lease: timedelta = timedelta(seconds=60)
    stream: str = "transactional"
    grant: Grant = grant_all
    on_paused: OnPaused | None = None
    rand: Callable[[], float] = random.random
    # Set by a stopping worker (SIGTERM): end after the message in hand.
    stopping: Callable[[], bool] = lambda: False
    # Set by a worker: a batch stops handing out messages once half their lease has run
    # (and gives the rest back), so a slow batch never sends a message another worker
    # may already have claimed again. Without it (``tick``), time stands still.
    clock: Callable[[], datetime] | None = None
    # Sends in flight at once per worker (delivery/handoff.py); 1 sends in claim order.
    concurrency: int = 1
    _handoff: Handoff = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._handoff = Handoff(lambda email: self.sender.send(email), self.concurrency)

    def run(self, *, now: datetime, limit: int = 100) -> SendReport:
        report = SendReport()
        claimed = self._claim(now, limit)
        report.claimed = len(claimed)
        if not claimed:
            return report
        ready = self._compose(claimed, now, report)
        sent: list[tuple[int, str]] = []

        def halted() -> bool:
            return report.paused or self.stopping() or self._lease_running_out(now)

        try:
            for message_id, outcome in self._handoff.run(ready, halted):
                self._send_one(message_id, outcome, now, report, sent)
                if len(sent) >= FINISH_EVERY:
                    self._finish_sent(sent, now)
            # Those never handed to the sender: give them back now rather than leave them
            # leased (and stuck) until their lease runs out.
            self.release(self._handoff.unsent)
        except Exception:
            # Those in flight may have gone out: their leases expire and they are retried
            # (at-least-once). The rest never reached the sender: try to give them back.
            self._release_quietly(self._handoff.unsent)
            raise
        finally:
            self._finish_sent(sent, now)
        return report

    def _compose(
        self, claimed: list[int], now: datetime, report: SendReport
    ) -> list[tuple[int, OutgoingEmail]]:
        """The claimed messages composed in one transaction, in claim order."""
        with transaction(self.sessions) as session:
            # Locked while composing, and still ours: a lease that ran out and was
            # claimed by another worker is theirs now, so this one must not send it.
            rows = session.scalars(
                select(Message)
                .where(
                    col(Message.id).in_(claimed),
                    col(Message.status) == "sending",
                    col(Message.leased_by) == self.worker_id,
                )
                .with_for_update()
            )
            order = {message_id: n for n, message_id in enumerate(claimed)}
            messages = sorted(rows, key=lambda m: order[m.id or 0])
            if len(messages) < len(claimed):
                log.warning("%d lease(s) lost before sending", len(claimed) - len(messages))
            ready: list[tuple[int, OutgoingEmail]] = []
            for message, email in zip(
                messages, self.composer.compose_many(session, messages, now), strict=True
            ):
                assert message.id is not None
                if email is None:
                    message.status = "cancelled"
                    message.lease_until = None
                    report.cancelled += 1
                else:
                    ready.append((message.id, email))
            return ready

    def _lease_running_out(self, claimed_at: datetime) -> bool:
        return self.clock is not None and self.clock() > claimed_at + self.lease / 2

    def _release_quietly(self, message_ids: list[int]) -> None:
        try:
            self.release(message_ids)
        except Exception:  # the database is gone: the leases expire on their own
            log.warning("could not release %d leased message(s)", len(message_ids))

    def release(self, message_ids: list[int]) -> int:
        """Leased messages back to ``queued``, their claim's attempt not counted."""
        if not message_ids:
            return 0
        with transaction(self.sessions) as session:
            result = session.execute(
                update(Message)
                .where(
                    col(Message.id).in_(message_ids),
                    col(Message.status) == "sending",
                    col(Message.leased_by) == self.worker_id,
                )
                .values(
                    status="queued",
                    lease_until=None,
                    leased_by=None,
                    attempts=Message.attempts - 1,
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def release_all(self) -> int:
        """Every lease this worker holds, back to ``queued`` (a worker's clean shutdown)."""
        with transaction(self.sessions) as session:
            ids = list(
                session.scalars(
                    select(col(Message.id)).where(
                        col(Message.status) == "sending", col(Message.leased_by) == self.worker_id
                    )
                )
            )
        return self.release([int(i) for i in ids if i is not None])

    def _claim(self, now: datetime, limit: int) -> list[int]:
        with transaction(self.sessions) as session:
            due = or_(
                and_(
                    col(Message.status).in_(("queued", "retry")),
                    col(Message.next_attempt_at) <= now,
                ),
                and_(col(Message.status) == "sending", col(Message.lease_until) < now),
            )
            query = (
                select(col(Message.id))
                .where(col(Message.stream) == self.stream, due)
                # Over the ramp limit, essential mail goes first, then the earliest due.
                .order_by(col(Message.essential).desc(), col(Message.due_at), col(Message.id))
                .limit(limit)
            )
            if is_postgres(session):
                query = query.with_for_update(skip_locked=True)
            ids = [int(i) for i in session.scalars(query) if i is not None]
            allowed = self.grant(session, len(ids), now) if ids else 0
            ids = ids[:allowed]
            if ids:
                session.execute(
                    update(Message)
                    .where(col(Message.id).in_(ids))
                    .values(
                        status="sending",
                        lease_until=now + self.lease,
                        leased_by=self.worker_id,
                        attempts=Message.attempts + 1,
                    )
                )
            return ids

    def _send_one(
        self,
        message_id: int,
        outcome: Callable[[], str],
        now: datetime,
        report: SendReport,
        sent: list[tuple[int, str]],
    ) -> None:
        """Record what the sender made of one message (``outcome`` returns or raises)."""
        try:
            provider_id = outcome()
        except Throttled as exc:
            self._retry(message_id, now, str(exc), report)
        except StreamPaused as exc:
            report.paused = True
            # With a ramp hook the paused ramp itself holds every send until an operator
            # resumes; the message then goes at once. Without one, wait PAUSE_RETRY.
            delay = timedelta(0) if self.on_paused is not None else PAUSE_RETRY
            self._retry(message_id, now, str(exc), report, delay=delay)
            if self.on_paused is not None:
                self.on_paused(str(exc), now)
        except MessageRejected as exc:
            self._finish(message_id, now, status="failed", error=str(exc))
            report.failed += 1
        except SenderMisconfigured:
            self._release(message_id)
            raise
        except Exception as exc:  # an unexpected peer failure: retry, never lose the message
            log.exception("send of message %s failed unexpectedly", message_id)
            self._retry(message_id, now, type(exc).__name__, report)
        else:
            sent.append((message_id, provider_id))
            report.sent += 1

    def _retry(
        self,
        message_id: int,
        now: datetime,
        error: str,
        report: SendReport,
        *,
        delay: timedelta | None = None,
    ) -> None:
        with transaction(self.sessions) as session:
            message = session.get(Message, message_id)
            assert message is not None
            if message.attempts >= MAX_ATTEMPTS and delay is None:
                message.status = "failed"
                report.failed += 1
            else:
                message.status = "retry"
                wait = (
                    delay if delay is not None else backoff_delay(message.attempts, rand=self.rand)
                )
                message.next_attempt_at = now + wait
                report.retried += 1
            message.error = error[:500]
            message.lease_until = None

    def _finish(
        self,
        message_id: int,
        now: datetime,
        *,
        status: str,
        provider_id: str | None = None,
        error: str | None = None,
    ) -> None:
        with transaction(self.sessions) as session:
            message = session.get(Message, message_id)
            assert message is not None
            message.status = status
            message.lease_until = None
            message.error = error[:500] if error else None
            if status == "sent":
                message.sent_at = now
                message.ses_message_id = provider_id
                count_sent(session, self.stream, now.date(), 1)
            session.execute(
                update(Occurrence)
                .where(
                    col(Occurrence.message_id) == message_id, col(Occurrence.status) == "batched"
                )
                .values(status="sent" if status == "sent" else "failed")
            )

    def _finish_sent(self, sent: list[tuple[int, str]], now: datetime) -> None:
        """Record a group of hand-offs in one transaction (then empties ``sent``).

        Grouping trades a little of the crash window for far fewer round trips: a worker
        that dies before recording them leaves them ``sending`` under its lease, and they
        go again when it expires, exactly like a send that was in flight.
        """
        if not sent:
            return
        ids = [message_id for message_id, _ in sent]
        with transaction(self.sessions) as session:
            session.execute(
                update(message_t)
                .where(message_t.c.id == bindparam("b_id"))
                .values(
                    status="sent",
                    lease_until=None,
                    error=None,
                    sent_at=now,
                    ses_message_id=bindparam("b_provider"),
                ),
                [{"b_id": message_id, "b_provider": provider} for message_id, provider in sent],
            )
            session.execute(
                update(Occurrence)
                .where(col(Occurrence.message_id).in_(ids), col(Occurrence.status) == "batched")
                .values(status="sent")
            )
            count_sent(session, self.stream, now.date(), len(ids))
        sent.clear()

    def _release(self, message_id: int) -> None:
        with transaction(self.sessions) as session:
            session.execute(
                update(Message)
                .where(col(Message.id) == message_id)
                .values(status="queued", lease_until=None, attempts=Message.attempts - 1)
            )
