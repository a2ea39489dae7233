"""What the operator dashboard shows, read from the database in one place.

The ramp's own view (:meth:`RampStore.show`) covers the last two weeks; the dashboard
charts 30 days, so this module reads ``send_day`` and the ``ramp_change`` audit log for
the window itself (read-only) and hands the figures to :mod:`scheduler.web.ops_charts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from scheduler.app import App
from scheduler.clock import utc
from scheduler.delivery.ramp_views import RampChangeView, RampView
from scheduler.tables import RampChange, SendDay
from scheduler.web.ops_charts import (
    Chart,
    Counts,
    DayPoint,
    day_points,
    last_days,
    limits_by_day,
    percent,
    rate_chart,
    volume_chart,
)

HISTORY_ROWS = 50
send_day_t = SendDay.__table__  # type: ignore[attr-defined]
ramp_change_t = RampChange.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class HistoryRow:
    at: str
    actor: str
    change: str
    reason: str


@dataclass(frozen=True)
class TableRow:
    """One day of the charts' data table (the charts' text alternative)."""

    day: str
    sent: str
    delivered: str
    limit: str
    bounce_rate: str
    complaint_rate: str


@dataclass(frozen=True)
class Dashboard:
    view: RampView
    charts: list[Chart]
    table: list[TableRow]  # newest first
    history: list[HistoryRow]
    min_volume: int


def load_dashboard(app: App, now: datetime) -> Dashboard:
    store = app.ramp
    view = store.show(now)  # also creates the stream's ramp row on first sight
    days = last_days(utc(now).date())
    start = datetime.combine(days[0], time(), UTC)
    with app.sessions() as session:
        counts = _counts(session, store.stream, days[0], days[-1])
        changes = _changes_since(session, store.stream, start)
    config = store.config
    points = day_points(days, counts, limits_by_day(days, changes), min_volume=config.min_volume)
    charts = [
        volume_chart(points),
        rate_chart(points, which="bounce", review=config.review, clean=config.clean),
        rate_chart(points, which="complaint", review=config.review, clean=config.clean),
    ]
    return Dashboard(
        view=view,
        charts=charts,
        table=[_table_row(p) for p in reversed(points)],
        history=[history_row(c) for c in store.history(HISTORY_ROWS)],
        min_volume=config.min_volume,
    )


def _counts(session: Session, stream: str, first: Any, last: Any) -> dict[Any, Counts]:
    rows = session.execute(
        select(send_day_t).where(
            send_day_t.c.stream == stream, send_day_t.c.day >= first, send_day_t.c.day <= last
        )
    )
    return {r.day: Counts(r.sent, r.delivered, r.bounced, r.complained) for r in rows}


def _changes_since(
    session: Session, stream: str, start: datetime
) -> list[tuple[datetime, dict[str, Any]]]:
    """Audit entries from ``start`` on, preceded by the last one before it (oldest first)."""
    of_stream = ramp_change_t.c.stream == stream
    before = session.execute(
        select(ramp_change_t.c.at, ramp_change_t.c.new)
        .where(of_stream, ramp_change_t.c.at < start)
        .order_by(ramp_change_t.c.id.desc())
        .limit(1)
    ).all()
    inside = session.execute(
        select(ramp_change_t.c.at, ramp_change_t.c.new)
        .where(of_stream, ramp_change_t.c.at >= start)
        .order_by(ramp_change_t.c.id)
    ).all()
    return [(row.at, row.new) for row in [*before, *inside]]


def _table_row(point: DayPoint) -> TableRow:
    c = point.counts
    limit = "—"
    if point.limit is not None:
        limit = f"{point.limit.daily_limit:,}" + (" (paused)" if point.limit.paused else "")
    judged = "" if point.judged or not c.sent else " (too few to judge)"
    return TableRow(
        day=point.day.isoformat(),
        sent=f"{c.sent:,}",
        delivered=f"{c.delivered:,}",
        limit=limit,
        bounce_rate=(percent(point.bounce_rate) + judged) if c.sent else "—",
        complaint_rate=(percent(point.complaint_rate) + judged) if c.sent else "—",
    )


def history_row(change: RampChangeView) -> HistoryRow:
    return HistoryRow(
        at=f"{utc(change.at):%Y-%m-%d %H:%M} UTC",
        actor=change.actor,
        change=describe_change(change.old, change.new),
        reason=change.reason,
    )


def describe_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    """``manual → paused``, ``limit 200 → 5,000/day``: only what moved."""
    if not old:
        return f"started: {state_text(new)}"
    parts = []
    if old.get("mode") != new.get("mode"):
        parts.append(f"{old.get('mode')} → {new.get('mode')}")
    if old.get("daily_limit") != new.get("daily_limit"):
        parts.append(
            f"limit {_count(old.get('daily_limit'))} → {_count(new.get('daily_limit'))}/day"
        )
    if old.get("rate_per_second") != new.get("rate_per_second"):
        parts.append(
            f"rate {_rate(old.get('rate_per_second'))} → {_rate(new.get('rate_per_second'))}/s"
        )
    return "; ".join(parts) or "reason only"


def state_text(state: dict[str, Any]) -> str:
    return (
        f"{state.get('mode')} at {_count(state.get('daily_limit'))}/day, "
        f"{_rate(state.get('rate_per_second'))}/s"
    )


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _rate(value: Any) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)
