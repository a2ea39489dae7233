"""Ramp-up store: the database side of the send-side limiter (DESIGN.md §9).

The policy is pure (:mod:`scheduler.delivery.ramp_policy`); this module keeps its state
in the ``ramp`` row of a stream, counts grants in ``send_day.granted`` and the shared
pacing window on the ramp row, and writes a ``ramp_change`` audit row for every change.

The database is the authority. Any number of workers call :meth:`RampStore.grant` at
once, and none of them can know what the others were granted except through the row
they all update: each counter is moved by one ``UPDATE ... RETURNING`` (an upsert for
``send_day``), which the database applies one worker at a time (PostgreSQL holds the row
lock from the UPDATE until commit; SQLite has a single writer, ``BEGIN IMMEDIATE``).
The statement adds the whole request and returns the new count, so each worker learns
exactly how many grants came before its own (``returned - requested``), keeps only what
is left under the limit, and hands the rest back in the same transaction, before any
other worker can see the row. Summed over workers the grants equal the limit exactly when
demand exceeds it, and never more. ``pacing.grant_count`` is the pure twin.

The read side (``show``, ``history`` and what they return) is
:mod:`scheduler.delivery.ramp_views`.

Auditing: who (``cli:<user>``, ``key:<id>``, ``ses``, ``ramp:auto``), when, the state
before and after as JSON, and why; a change without a reason is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Row, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from scheduler.clock import utc
from scheduler.db import is_postgres, transaction
from scheduler.delivery.pacing import PacingWindow
from scheduler.delivery.ramp_policy import (
    Quota,
    RampAction,
    RampConfig,
    RampDecision,
    RampMode,
    RampState,
    initial_state,
    next_day,
    validate_manual_change,
)
from scheduler.delivery.ramp_views import (
    RampChangeView,
    RampView,
    change_history,
    day_figures,
    ramp_view,
    recent_days,
)
from scheduler.errors import Conflict, InvalidInput, PeerError
from scheduler.tables import Message, Occurrence, Ramp, RampChange, SendDay, Topic

log = logging.getLogger(__name__)

ramp_t = Ramp.__table__  # type: ignore[attr-defined]
send_day_t = SendDay.__table__  # type: ignore[attr-defined]
message_t = Message.__table__  # type: ignore[attr-defined]
occurrence_t = Occurrence.__table__  # type: ignore[attr-defined]
topic_t = Topic.__table__  # type: ignore[attr-defined]
ramp_change_t = RampChange.__table__  # type: ignore[attr-defined]

POLICY_ACTOR = "ramp:auto"
SES_ACTOR = "ses"
SYSTEM_ACTOR = "system"
REASON_MAX = 500  # ramp.reason / ramp_change.reason column width
ACTOR_MAX = 120
_GRANT_TRIES = 3  # re-reads when the rate or mode changed between read and update

# A change to a stream's state, given its current state and the SES quota, run inside the
# transaction that holds the ramp row's lock.
Mutation = Callable[[RampState, "Quota | None", Session], RampState]


# --- the store -------------------------------------------------------------------------


class RampStore:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: RampConfig,
        *,
        stream: str = "transactional",
        quota: Callable[[], Quota | None] = lambda: None,
    ) -> None:
        self._sessions = sessions
        self.config = config
        self.stream = stream
        self._quota = quota

    # -- grants (the SEND stage's hook, inside its claim transaction) ------------------

    def grant(self, session: Session, requested: int, now: datetime) -> int:
        """How many of ``requested`` sends may go now; counts them. Paused grants 0."""
        if requested <= 0:
            return 0
        for _ in range(_GRANT_TRIES):
            row = session.execute(
                select(ramp_t.c.mode, ramp_t.c.rate_per_second).where(self._row)
            ).one_or_none()
            if row is None:
                self._insert_initial(session, now)
                continue
            if row.mode == RampMode.PAUSED:
                return 0
            granted = self._grant_at_rate(session, requested, now, row.rate_per_second)
            if granted is not None:
                return granted
        return 0  # the row kept changing under us: grant nothing, the next tick asks again

    def _grant_at_rate(
        self, session: Session, requested: int, now: datetime, rate: float
    ) -> int | None:
        """Claim from the pacing window, then from today's limit; None if the row moved."""
        window = PacingWindow.for_rate(rate)
        key = int(window.start(now).timestamp())
        same_window = ramp_t.c.second == key
        # Reserve: the row is only touched while the mode and rate are the ones we read
        # (PostgreSQL re-checks the WHERE on the newest row version after a lock wait).
        reserved = session.execute(
            update(ramp_t)
            .where(self._row, ramp_t.c.mode != RampMode.PAUSED, ramp_t.c.rate_per_second == rate)
            .values(
                second=key,
                second_count=case((same_window, ramp_t.c.second_count), else_=0) + requested,
            )
            .returning(ramp_t.c.daily_limit, ramp_t.c.second_count)
        ).one_or_none()
        if reserved is None:
            return None
        in_window = _left(window.capacity, reserved.second_count - requested, requested)
        granted = self._claim_today(session, in_window, utc(now).date(), reserved.daily_limit)
        if granted < requested:
            session.execute(
                update(ramp_t)
                .where(self._row)
                .values(second_count=ramp_t.c.second_count - (requested - granted))
            )
        return granted

    def _claim_today(self, session: Session, wanted: int, day: date, limit: int) -> int:
        if wanted <= 0:
            return 0
        dialect = postgresql if is_postgres(session) else sqlite
        counts = {c: 0 for c in ("sent", "delivered", "bounced", "complained", "rejected")}
        statement = (
            dialect.insert(send_day_t)
            .values(stream=self.stream, day=day, granted=wanted, delayed=0, **counts)
            .on_conflict_do_update(
                index_elements=["stream", "day"],
                set_={"granted": send_day_t.c.granted + wanted},
            )
            .returning(send_day_t.c.granted)
        )
        total = int(session.execute(statement).scalar_one())
        granted = _left(limit, total - wanted, wanted)
        if granted < wanted:
            session.execute(
                update(send_day_t)
                .where(send_day_t.c.stream == self.stream, send_day_t.c.day == day)
                .values(granted=send_day_t.c.granted - (wanted - granted))
            )
        return granted

    # -- the backlog past its lateness -------------------------------------------------

    def expire_waiting(self, session: Session, now: datetime) -> int:
        """Expire queued/retry messages waiting past their topic's ``max_lateness``.

        A reminder that arrives after the thing it reminds of is noise (DESIGN §5, §9):
        ``message.due_at + topic.max_lateness_seconds < now``. The message and its items
        become ``expired``; the items carry layer ``ramp`` and the reason.
        """
        expired = 0
        topics = session.execute(select(topic_t.c.key, topic_t.c.max_lateness_seconds)).all()
        for key, seconds in topics:
            reason = f"waited past the topic's max lateness of {timedelta(seconds=seconds)}"
            ids = list(
                session.scalars(
                    update(message_t)
                    .where(
                        message_t.c.stream == self.stream,
                        message_t.c.topic == key,
                        message_t.c.status.in_(("queued", "retry")),
                        message_t.c.due_at < utc(now) - timedelta(seconds=seconds),
                    )
                    .values(status="expired", error=reason, lease_until=None)
                    .returning(message_t.c.id)
                )
            )
            if ids:
                session.execute(
                    update(occurrence_t)
                    .where(occurrence_t.c.message_id.in_(ids), occurrence_t.c.status == "batched")
                    .values(status="expired", layer="ramp", reason=reason, decided_at=now)
                )
                expired += len(ids)
        if expired:
            log.info("ramp: expired %d message(s) waiting past their max lateness", expired)
        return expired

    def expire(self, now: datetime) -> int:
        """:meth:`expire_waiting` in a transaction of its own (the pipeline's step)."""
        with transaction(self._sessions) as session:
            return self.expire_waiting(session, now)

    # -- operator and automatic changes ------------------------------------------------

    def ensure(self, now: datetime) -> RampState:
        """The stream's state, creating its row (first step of the ramp) if missing."""
        with transaction(self._sessions) as session:
            return _state(self._locked_row(session, now))

    def pause(self, reason: str, actor: str, now: datetime) -> RampState:
        reason = require_reason(reason)

        def paused(state: RampState, _quota: Quota | None, _session: Session) -> RampState:
            if state.mode is RampMode.PAUSED:
                return state  # already paused: repeated SES errors must not flood the audit
            return replace(state, mode=RampMode.PAUSED, reason=reason)

        return self._change(actor, now, reason, paused)

    def resume(self, actor: str, now: datetime, reason: str) -> RampState:
        """Back to the mode the stream had before it was paused (auto if unknown)."""
        reason = require_reason(reason)

        def resumed(state: RampState, _quota: Quota | None, session: Session) -> RampState:
            if state.mode is not RampMode.PAUSED:
                raise Conflict(f"the stream is {state.mode}, not paused: nothing to resume")
            return replace(state, mode=self._mode_before_pause(session), reason=reason)

        return self._change(actor, now, reason, resumed)

    def set_manual(
        self, daily: int, rate: float | None, reason: str, actor: str, now: datetime
    ) -> RampState:
        """Manual mode at ``daily`` a day (and ``rate``/s, or the current rate)."""
        quota = self._read_quota()
        validate_manual_change(daily, rate, reason, quota)
        reason = require_reason(reason)

        def manual(state: RampState, _quota: Quota | None, _session: Session) -> RampState:
            return RampState(
                mode=RampMode.MANUAL,
                daily_limit=daily,
                rate_per_second=state.rate_per_second if rate is None else rate,
                step=self.config.step_for(daily),
                reason=reason,
            )

        return self._change(actor, now, reason, manual, quota=quota)

    def auto(self, actor: str, now: datetime, reason: str) -> RampState:
        """Hand the stream back to the policy from the current limit (also un-pauses)."""
        reason = require_reason(reason)

        def automatic(state: RampState, quota: Quota | None, _session: Session) -> RampState:
            ceiling = quota.daily_ceiling if quota is not None else None
            limit = state.daily_limit if ceiling is None else min(state.daily_limit, ceiling)
            rate = self.config.auto_rate(limit)
            rate_ceiling = quota.rate_ceiling if quota is not None else None
            return RampState(
                mode=RampMode.AUTO,
                daily_limit=limit,
                rate_per_second=rate if rate_ceiling is None else min(rate, rate_ceiling),
                step=self.config.step_for(limit),
                reason=reason,
            )

        return self._change(actor, now, reason, automatic)

    def on_stream_paused(self, message: str, now: datetime) -> None:
        """The SEND stage's ``on_paused`` hook: SES said SendingPaused/AccountSuspended."""
        log.warning("ramp: SES paused sending on stream %s: %s", self.stream, message)
        self.pause(f"SES: {message}"[:REASON_MAX], SES_ACTOR, now)

    def evaluate_day(self, now: datetime) -> RampDecision:
        """Yesterday's figures → today's limit, once per UTC day (re-runs change nothing)."""
        quota = self._read_quota()  # a network call (SES): outside the transaction
        today = utc(now).date()
        with transaction(self._sessions) as session:
            row = self._locked_row(session, now)
            state = _state(row)
            if row.evaluated_day == today:
                return RampDecision(RampAction.NONE, state, f"already evaluated for {today}")
            yesterday = day_figures(self._day_row(session, today - timedelta(days=1)))
            decision = next_day(state, yesterday, self.config, quota)
            session.execute(update(ramp_t).where(self._row).values(evaluated_day=today))
            if decision.state != state:
                self._store(session, state, decision.state, POLICY_ACTOR, now, decision.reason)
            log.info("ramp %s: %s - %s", self.stream, decision.action, decision.reason)
            return decision

    # -- reading -----------------------------------------------------------------------

    def show(self, now: datetime) -> RampView:
        quota = self._read_quota()
        today = utc(now).date()
        with transaction(self._sessions) as session:
            row = self._locked_row(session, now)
            days = recent_days(session, self.stream, today)
        return ramp_view(
            self.stream,
            self.config,
            _state(row),
            evaluated_day=row.evaluated_day,
            days=days,
            quota=quota,
            today=today,
        )

    def history(self, limit: int = 50) -> list[RampChangeView]:
        """The audit log, newest first."""
        with self._sessions() as session:
            return change_history(session, self.stream, limit)

    # -- internals ---------------------------------------------------------------------

    @property
    def _row(self) -> Any:
        return ramp_t.c.stream == self.stream

    def _read_quota(self) -> Quota | None:
        try:
            return self._quota()
        except PeerError as exc:
            # Without the quota the ceiling is unknown, not zero: the ramp's own limits
            # still hold, and SES refuses any excess itself.
            log.warning("ramp: SES quota unreadable (%s); going on without its ceiling", exc)
            return None

    def _change(
        self,
        actor: str,
        now: datetime,
        reason: str,
        mutate: Mutation,
        *,
        quota: Quota | None = None,
    ) -> RampState:
        """Apply ``mutate`` to the locked state and audit it, in one transaction."""
        actor = (actor or "").strip()[:ACTOR_MAX]
        if not actor:
            raise InvalidInput("who is making the change must be known", field="actor")
        quota = quota if quota is not None else self._read_quota()
        with transaction(self._sessions) as session:
            old = _state(self._locked_row(session, now))
            new = mutate(old, quota, session)
            if new != old:
                self._store(session, old, new, actor, now, reason)
            return new

    def _locked_row(self, session: Session, now: datetime) -> Row[Any]:
        query = select(ramp_t).where(self._row).with_for_update()  # SQLite: ignored
        row = session.execute(query).one_or_none()
        if row is None:
            self._insert_initial(session, now)
            row = session.execute(query).one()
        return row

    def _insert_initial(self, session: Session, now: datetime) -> None:
        state = initial_state(self.config, self._read_quota())
        dialect = postgresql if is_postgres(session) else sqlite
        inserted = session.execute(
            dialect.insert(ramp_t)
            .values(
                stream=self.stream,
                **state.as_dict(),
                second=0,
                second_count=0,
                evaluated_day=None,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["stream"])
            .returning(ramp_t.c.stream)
        ).one_or_none()
        if inserted is not None:
            self._audit(session, {}, state.as_dict(), SYSTEM_ACTOR, now, state.reason)

    def _store(
        self,
        session: Session,
        old: RampState,
        new: RampState,
        actor: str,
        now: datetime,
        reason: str,
    ) -> None:
        new = replace(new, reason=reason[:REASON_MAX])
        session.execute(update(ramp_t).where(self._row).values(**new.as_dict(), updated_at=now))
        self._audit(session, old.as_dict(), new.as_dict(), actor, now, new.reason)

    def _audit(
        self,
        session: Session,
        old: dict[str, Any],
        new: dict[str, Any],
        actor: str,
        now: datetime,
        reason: str,
    ) -> None:
        session.add(
            RampChange(
                stream=self.stream,
                at=now,
                actor=actor,
                old=old,
                new=new,
                reason=reason[:REASON_MAX],
            )
        )

    def _mode_before_pause(self, session: Session) -> RampMode:
        changes = session.scalars(
            select(RampChange)
            .where(ramp_change_t.c.stream == self.stream)
            .order_by(ramp_change_t.c.id.desc())
            .limit(100)
        )
        for change in changes:
            before = change.old.get("mode")
            if change.new.get("mode") == RampMode.PAUSED and before not in (None, "paused"):
                return RampMode(before)
        return RampMode.AUTO

    def _day_row(self, session: Session, day: date) -> Row[Any] | None:
        return session.execute(
            select(send_day_t).where(send_day_t.c.stream == self.stream, send_day_t.c.day == day)
        ).one_or_none()


def _left(limit: int, before: int, wanted: int) -> int:
    """Of ``wanted``, what fits between ``before`` and ``limit`` (never below 0)."""
    return max(0, min(wanted, limit - before))


def require_reason(reason: str | None) -> str:
    """The reason, stripped; refused when blank or too long for the audit row."""
    text = (reason or "").strip()
    if not text:
        raise InvalidInput("say why: every ramp change is audited", field="reason")
    if len(text) > REASON_MAX:
        raise InvalidInput(f"at most {REASON_MAX} characters", field="reason")
    return text


def _state(row: Row[Any]) -> RampState:
    return RampState(
        mode=RampMode(row.mode),
        daily_limit=row.daily_limit,
        rate_per_second=row.rate_per_second,
        step=row.step,
        reason=row.reason,
    )
