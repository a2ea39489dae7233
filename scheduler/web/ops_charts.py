"""The operator dashboard's charts as geometry: pure code, no web framework, no clock.

The dashboard draws three small charts of the last 30 days (DESIGN §9):

- sent and delivered per day against the ramp's daily limit on that day;
- the bounce rate against SES's review threshold and our clean threshold;
- the complaint rate likewise.

This module turns figures into coordinates, ticks and sentences; a Jinja2 template
draws them as inline SVG (server-rendered, no JavaScript, nothing from a CDN). The
sentences are the charts' accessible descriptions (``<desc>``): a screen reader hears
what a sighted operator sees at a glance. Rates use the ramp policy's own definitions
(:class:`scheduler.delivery.ramp_policy.DayFigures`) so the chart and the policy agree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from scheduler.clock import utc
from scheduler.delivery.ramp_policy import DayFigures, Thresholds

WIDTH = 360
HEIGHT = 230
# Room for the y labels on the left, the legend on top and the date labels below.
LEFT, RIGHT, TOP, BOTTOM = 46.0, 8.0, 34.0, 24.0
DAYS = 30
LEGEND_SWATCH = 18.0  # a 14 px swatch and a 4 px gap before its label

SeriesKind = Literal["sent", "delivered", "limit", "rate", "review", "clean"]


@dataclass(frozen=True)
class Counts:
    """One ``send_day`` row's counts that the charts use."""

    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0


@dataclass(frozen=True)
class LimitOnDay:
    """The ramp at the end of a day: its daily limit and whether it was paused."""

    daily_limit: int
    paused: bool


@dataclass(frozen=True)
class DayPoint:
    day: date
    counts: Counts
    limit: LimitOnDay | None  # None before the ramp's first audit entry
    bounce_rate: float
    complaint_rate: float
    judged: bool  # enough sends for the rates to mean something (the policy's min_volume)


def last_days(today: date, count: int = DAYS) -> list[date]:
    """``count`` days ending with ``today``, oldest first."""
    return [today - timedelta(days=offset) for offset in range(count - 1, -1, -1)]


def limits_by_day(
    days: Sequence[date],
    changes: Sequence[tuple[datetime, Mapping[str, Any]]],
) -> dict[date, LimitOnDay]:
    """The ramp state in force at the end of each day (UTC), from its audit entries.

    ``changes`` are ``(at, new_state)`` oldest first, including the last change before
    the first day (it says where the window started). Days before any change are absent.
    """
    result: dict[date, LimitOnDay] = {}
    current: LimitOnDay | None = None
    pending = list(changes)
    for day in days:
        while pending and utc(pending[0][0]).date() <= day:
            state = pending.pop(0)[1]
            if "daily_limit" in state:
                current = LimitOnDay(int(state["daily_limit"]), state.get("mode") == "paused")
        if current is not None:
            result[day] = current
    return result


def day_points(
    days: Sequence[date],
    counts: Mapping[date, Counts],
    limits: Mapping[date, LimitOnDay],
    *,
    min_volume: int,
) -> list[DayPoint]:
    points = []
    for day in days:
        c = counts.get(day, Counts())
        figures = DayFigures(day, c.sent, c.delivered, c.bounced, c.complained, 0)
        points.append(
            DayPoint(
                day=day,
                counts=c,
                limit=limits.get(day),
                bounce_rate=figures.bounce_rate,
                complaint_rate=figures.complaint_rate,
                judged=c.sent >= min_volume,
            )
        )
    return points


# --- geometry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Tick:
    at: float  # pixel coordinate along the axis
    label: str
    anchor: Literal["start", "middle", "end"] = "middle"  # SVG text-anchor


@dataclass(frozen=True)
class Bar:
    kind: SeriesKind
    x: float
    y: float
    width: float
    height: float
    tooltip: str


@dataclass(frozen=True)
class Polyline:
    kind: SeriesKind
    points: str  # "x,y x,y ..." for <polyline points>


@dataclass(frozen=True)
class Marker:
    x: float
    y: float
    judged: bool
    tooltip: str


@dataclass(frozen=True)
class Rule:
    """A horizontal threshold line with its label."""

    kind: SeriesKind
    y: float
    label: str


@dataclass(frozen=True)
class LegendItem:
    kind: SeriesKind
    label: str
    x: float  # where its swatch starts


def _legend(*items: tuple[SeriesKind, str]) -> list[LegendItem]:
    """Legend entries in a row above the plot, each as wide as its label."""
    placed, x = [], 4.0
    for kind, label in items:
        placed.append(LegendItem(kind, label, x))
        x += LEGEND_SWATCH + len(label) * 6.5 + 8  # label at ~6.5 px a character at 12 px
    return placed


@dataclass(frozen=True)
class Chart:
    slug: str  # for element ids
    caption: str
    title: str
    description: str
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    bars: list[Bar]
    lines: list[Polyline]
    markers: list[Marker]
    rules: list[Rule]
    legend: list[LegendItem]
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def plot_left(self) -> float:
        return LEFT

    @property
    def plot_right(self) -> float:
        return self.width - RIGHT

    @property
    def plot_top(self) -> float:
        return TOP

    @property
    def plot_bottom(self) -> float:
        return self.height - BOTTOM


def nice_ceiling(value: float, ticks: int = 4) -> tuple[float, float]:
    """An axis top at or above ``value`` and its tick step, both on a 1-2-5 ladder."""
    if value <= 0 or not math.isfinite(value):
        return 1.0, 0.25
    raw = value / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw * (1 - 1e-9))
    return step * math.ceil(value / step - 1e-9), step


class _Frame:
    """Maps day indexes and values to pixels inside the plot area."""

    def __init__(self, days: int, top_value: float) -> None:
        self.slot = (WIDTH - RIGHT - LEFT) / max(days, 1)
        self.top_value = top_value

    def x(self, index: int) -> float:
        return LEFT + index * self.slot

    def y(self, value: float) -> float:
        plot = HEIGHT - BOTTOM - TOP
        return round(HEIGHT - BOTTOM - plot * min(value, self.top_value) / self.top_value, 2)


def _x_ticks(points: Sequence[DayPoint], frame: _Frame) -> list[Tick]:
    """A date under the first day, every seventh day, and today (flush right: no clipping)."""
    last = len(points) - 1
    chosen = [i for i in range(0, last + 1, 7) if last - i >= 4]
    ticks = [
        Tick(round(frame.x(i) + frame.slot / 2, 2), _short_date(points[i].day)) for i in chosen
    ]
    return [*ticks, Tick(round(frame.x(last + 1), 2), _short_date(points[last].day), "end")]


def _short_date(day: date) -> str:
    return f"{day:%b} {day.day}"


def _y_ticks(frame: _Frame, step: float, label: Callable[[float], str]) -> list[Tick]:
    count = round(frame.top_value / step)
    return [Tick(frame.y(i * step), label(i * step)) for i in range(count + 1)]


def volume_chart(points: Sequence[DayPoint]) -> Chart:
    """Sent (wide bars), delivered (narrow bars inside) and the daily limit (a step line)."""
    peak_sent = max((p.counts.sent for p in points), default=0)
    peak_limit = max((p.limit.daily_limit for p in points if p.limit), default=0)
    top, step = nice_ceiling(max(peak_sent, peak_limit, 1) * 1.05)
    frame = _Frame(len(points), top)
    bars: list[Bar] = []
    for i, p in enumerate(points):
        when = p.day.isoformat()
        if p.counts.sent:
            bars.append(
                _bar("sent", frame, i, p.counts.sent, 0.8, f"{when}: {p.counts.sent:,} sent")
            )
        if p.counts.delivered:
            text = f"{when}: {p.counts.delivered:,} delivered"
            bars.append(_bar("delivered", frame, i, p.counts.delivered, 0.4, text))
    return Chart(
        slug="volume",
        caption="Sent and delivered",
        title="Sent and delivered per day against the daily limit, last 30 days",
        description=_volume_sentence(points),
        y_ticks=_y_ticks(frame, step, _compact),
        x_ticks=_x_ticks(points, frame),
        bars=bars,
        lines=_limit_lines(points, frame),
        markers=[],
        rules=[],
        legend=_legend(("sent", "sent"), ("delivered", "delivered"), ("limit", "daily limit")),
    )


def _bar(kind: SeriesKind, frame: _Frame, index: int, value: int, share: float, tip: str) -> Bar:
    width = frame.slot * share
    x = frame.x(index) + (frame.slot - width) / 2
    y = frame.y(value)
    return Bar(kind, round(x, 2), y, round(width, 2), round(HEIGHT - BOTTOM - y, 2), tip)


def _limit_lines(points: Sequence[DayPoint], frame: _Frame) -> list[Polyline]:
    """One stepped line per run of days with a known limit (a gap where none is known)."""
    lines: list[Polyline] = []
    run: list[str] = []
    for i, p in enumerate(points):
        if p.limit is None:
            if run:
                lines.append(Polyline("limit", " ".join(run)))
            run = []
            continue
        y = frame.y(p.limit.daily_limit)
        run += [f"{frame.x(i):g},{y:g}", f"{round(frame.x(i + 1), 2):g},{y:g}"]
    if run:
        lines.append(Polyline("limit", " ".join(run)))
    return lines


def rate_chart(
    points: Sequence[DayPoint],
    *,
    which: Literal["bounce", "complaint"],
    review: Thresholds,
    clean: Thresholds,
) -> Chart:
    """A rate per day (a line with a dot per day that sent anything) and two thresholds.

    A hollow dot marks a day with too few sends for the policy to judge it.
    """
    review_at = review.bounce if which == "bounce" else review.complaint
    clean_at = clean.bounce if which == "bounce" else clean.complaint
    rates = [(i, p, _rate(p, which)) for i, p in enumerate(points) if p.counts.sent]
    top, step = nice_ceiling(max([review_at * 1.2] + [r for _, _, r in rates]))
    frame = _Frame(len(points), top)
    markers = [
        Marker(
            round(frame.x(i) + frame.slot / 2, 2),
            frame.y(r),
            p.judged,
            f"{p.day.isoformat()}: {which} rate {percent(r)}"
            + ("" if p.judged else " (too few sends to judge)"),
        )
        for i, p, r in rates
    ]
    line = " ".join(f"{m.x:g},{m.y:g}" for m in markers)
    return Chart(
        slug=which,
        caption=f"{which.capitalize()} rate",
        title=f"{which.capitalize()} rate per day, last 30 days",
        description=_rate_sentence(points, which, review_at, clean_at),
        y_ticks=_y_ticks(frame, step, percent),
        x_ticks=_x_ticks(points, frame),
        bars=[],
        lines=[Polyline("rate", line)] if len(markers) > 1 else [],
        markers=markers,
        rules=[
            Rule("review", frame.y(review_at), f"SES review {percent(review_at)}"),
            Rule("clean", frame.y(clean_at), f"clean under {percent(clean_at)}"),
        ],
        legend=_legend(
            ("rate", f"{which} rate"),
            ("review", f"SES review {percent(review_at)}"),
            ("clean", f"clean {percent(clean_at)}"),
        ),
    )


def _rate(point: DayPoint, which: str) -> float:
    return point.bounce_rate if which == "bounce" else point.complaint_rate


# --- words --------------------------------------------------------------------------------


def _volume_sentence(points: Sequence[DayPoint]) -> str:
    if not points:
        return "No days to show."
    first, last = points[0].day.isoformat(), points[-1].day.isoformat()
    sent = sum(p.counts.sent for p in points)
    delivered = sum(p.counts.delivered for p in points)
    text = f"From {first} to {last}: {sent:,} sent and {delivered:,} delivered."
    busiest = max(points, key=lambda p: p.counts.sent)
    if busiest.counts.sent:
        limit = f" against a limit of {busiest.limit.daily_limit:,}" if busiest.limit else ""
        text += f" Busiest day {busiest.day.isoformat()}: {busiest.counts.sent:,} sent{limit}."
    now = points[-1].limit
    if now is not None:
        text += f" The daily limit today is {now.daily_limit:,}" + (
            " and sending is paused." if now.paused else "."
        )
    return text


def _rate_sentence(
    points: Sequence[DayPoint], which: str, review_at: float, clean_at: float
) -> str:
    judged = [p for p in points if p.judged]
    head = f"SES reviews an account at a {which} rate of {percent(review_at)}; "
    head += f"we call a day clean under {percent(clean_at)}."
    if not judged:
        return head + " No day in the last 30 sent enough mail to judge."
    worst = max(judged, key=lambda p: _rate(p, which))
    over_clean = sum(1 for p in judged if _rate(p, which) >= clean_at)
    over_review = sum(1 for p in judged if _rate(p, which) >= review_at)
    return (
        f"{head} Of {len(judged)} days with enough mail to judge, the highest {which} rate "
        f"was {percent(_rate(worst, which))} on {worst.day.isoformat()}; "
        f"{over_clean} reached the clean threshold and {over_review} the review threshold."
    )


def percent(rate: float) -> str:
    """2% / 0.05% / 1.25%: as many decimals as the value needs, at most three (charts, tables)."""
    text = f"{rate * 100:.3f}".rstrip("0").rstrip(".")
    return f"{text}%"


def _compact(value: float) -> str:
    """Axis labels: 0, 250, 1.5k, 20k, 1M."""
    if value >= 1_000_000:
        return f"{value / 1_000_000:g}M"
    if value >= 1_000:
        return f"{value / 1_000:g}k"
    return f"{value:g}"
