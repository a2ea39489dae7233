"""The read side of the ramp store: what ``ramp show``, ``/ops/ramp`` and the dashboard see.

:class:`scheduler.delivery.ramp.RampStore` locks and creates the ramp row; this module turns
that row, the stream's recent ``send_day`` rows and its ``ramp_change`` audit rows into
views (DESIGN.md §9). Reads only: nothing here writes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from scheduler.delivery.ramp_policy import (
    DayFigures,
    Quota,
    RampConfig,
    RampMode,
    RampState,
    describe,
)
from scheduler.tables import RampChange, SendDay

HISTORY_DAYS = 14

send_day_t = SendDay.__table__  # type: ignore[attr-defined]
ramp_change_t = RampChange.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class DayRow:
    """One day of a stream's figures with the two rates the policy judges by."""

    day: date
    granted: int
    sent: int
    delivered: int
    bounced: int
    complained: int
    rejected: int
    bounce_rate: float
    complaint_rate: float


@dataclass(frozen=True)
class RampView:
    stream: str
    mode: RampMode
    daily_limit: int
    rate_per_second: float
    step: int  # index into the ladder, 0-based
    steps: int  # length of the ladder
    reason: str
    used_today: int  # grants counted today (send_day.granted)
    sent_today: int
    quota: Quota | None
    evaluated_day: date | None
    days: list[DayRow]  # newest first, today included
    next_step: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RampChangeView:
    at: datetime
    actor: str
    old: dict[str, Any]
    new: dict[str, Any]
    reason: str


def recent_days(session: Session, stream: str, today: date) -> list[Row[Any]]:
    """The stream's ``send_day`` rows of the last :data:`HISTORY_DAYS`, newest first."""
    return list(
        session.execute(
            select(send_day_t)
            .where(
                send_day_t.c.stream == stream,
                send_day_t.c.day > today - timedelta(days=HISTORY_DAYS),
            )
            .order_by(send_day_t.c.day.desc())
        )
    )


def ramp_view(
    stream: str,
    config: RampConfig,
    state: RampState,
    *,
    evaluated_day: date | None,
    days: list[Row[Any]],
    quota: Quota | None,
    today: date,
) -> RampView:
    """Where the stream stands, from its state and :func:`recent_days`."""
    by_day = {d.day: d for d in days}
    # The next evaluation reads yesterday if today's has not run yet, else today.
    basis = today if evaluated_day == today else today - timedelta(days=1)
    current = by_day.get(today)
    return RampView(
        stream=stream,
        mode=state.mode,
        daily_limit=state.daily_limit,
        rate_per_second=state.rate_per_second,
        step=state.step,
        steps=len(config.ladder),
        reason=state.reason,
        used_today=current.granted if current is not None else 0,
        sent_today=current.sent if current is not None else 0,
        quota=quota,
        evaluated_day=evaluated_day,
        days=[day_row(d) for d in days],
        next_step=describe(state, day_figures(by_day.get(basis)), config, quota),
    )


def change_history(session: Session, stream: str, limit: int) -> list[RampChangeView]:
    """The stream's audit log, newest first."""
    rows = session.scalars(
        select(RampChange)
        .where(ramp_change_t.c.stream == stream)
        .order_by(ramp_change_t.c.id.desc())
        .limit(limit)
    )
    return [RampChangeView(r.at, r.actor, r.old, r.new, r.reason) for r in rows]


def day_figures(row: Row[Any] | None) -> DayFigures | None:
    """A ``send_day`` row as the figures the policy judges (None for no row)."""
    if row is None:
        return None
    return DayFigures(
        day=row.day,
        sent=row.sent,
        delivered=row.delivered,
        bounced=row.bounced,
        complained=row.complained,
        rejected=row.rejected,
    )


def day_row(row: Row[Any]) -> DayRow:
    figures = day_figures(row)
    assert figures is not None
    return DayRow(
        day=row.day,
        granted=row.granted,
        sent=row.sent,
        delivered=row.delivered,
        bounced=row.bounced,
        complained=row.complained,
        rejected=row.rejected,
        bounce_rate=figures.bounce_rate,
        complaint_rate=figures.complaint_rate,
    )
