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
from datetime import date, datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlmodel import col

from scheduler.db import is_postgres, transaction
from scheduler.delivery.compose import Composer
from scheduler.delivery.retry import backoff_delay
from scheduler.delivery.send_day import count_sent
from scheduler.delivery.senders import Sender
from scheduler.errors import MessageRejected, SenderMisconfigured, StreamPaused, Throttled
from scheduler.tables import Message, Occurrence

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
PAUSE_RETRY = timedelta(minutes=5)

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

    def run(self, *, now: datetime, limit: int = 100) -> SendReport:
        report = SendReport()
        for message_id in self._claim(now, limit):
            report.claimed += 1
            self._send_one(message_id, now, report)
            if report.paused:
                break
        return report

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

    def _send_one(self, message_id: int, now: datetime, report: SendReport) -> None:
        with transaction(self.sessions) as session:
            message = session.get(Message, message_id)
            assert message is not None
            email = self.composer.compose(session, message, now)
            if email is None:
                message.status = "cancelled"
                message.lease_until = None
                report.cancelled += 1
                return
        try:
            provider_id = self.sender.send(email)
        except Throttled as exc:
            self._retry(message_id, now, str(exc), report)
        except StreamPaused as exc:
            report.paused = True
            self._retry(message_id, now, str(exc), report, delay=PAUSE_RETRY)
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
            self._finish(message_id, now, status="sent", provider_id=provider_id)
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
                wait = delay or backoff_delay(message.attempts, rand=self.rand)
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

    def _release(self, message_id: int) -> None:
        with transaction(self.sessions) as session:
            session.execute(
                update(Message)
                .where(col(Message.id) == message_id)
                .values(status="queued", lease_until=None, attempts=Message.attempts - 1)
            )


def day_of(now: datetime) -> date:
    return now.date()
