"""The dashboard's chart geometry and words (``scheduler.web.ops_charts``), pure."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.delivery.ramp_policy import RampConfig
from scheduler.web.ops_charts import (
    BOTTOM,
    HEIGHT,
    TOP,
    Counts,
    DayPoint,
    LimitOnDay,
    day_points,
    last_days,
    limits_by_day,
    nice_ceiling,
    percent,
    rate_chart,
    volume_chart,
)

TODAY = date(2025, 3, 10)
DAYS = last_days(TODAY)
CONFIG = RampConfig()


def at(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_last_days_are_thirty_oldest_first_ending_today() -> None:
    assert len(DAYS) == 30
    assert DAYS[0] == date(2025, 2, 9) and DAYS[-1] == TODAY


def test_limits_follow_the_audit_log_and_start_from_the_entry_before_the_window() -> None:
    changes = [
        (at(date(2025, 1, 1)), {"mode": "auto", "daily_limit": 200}),
        (at(date(2025, 2, 20)), {"mode": "manual", "daily_limit": 500}),
        (at(date(2025, 3, 1), 23), {"mode": "paused", "daily_limit": 500}),
    ]
    limits = limits_by_day(DAYS, changes)
    assert limits[date(2025, 2, 9)] == LimitOnDay(200, paused=False)
    assert limits[date(2025, 2, 19)] == LimitOnDay(200, paused=False)
    assert limits[date(2025, 2, 20)] == LimitOnDay(500, paused=False)  # the state at day's end
    assert limits[date(2025, 3, 1)] == LimitOnDay(500, paused=True)
    assert limits[TODAY] == LimitOnDay(500, paused=True)


def test_days_before_the_first_audit_entry_have_no_limit() -> None:
    limits = limits_by_day(DAYS, [(at(date(2025, 3, 1)), {"mode": "auto", "daily_limit": 200})])
    assert date(2025, 2, 28) not in limits and limits[date(2025, 3, 1)].daily_limit == 200


def test_day_points_use_the_policy_rates_and_its_minimum_volume() -> None:
    counts = {
        TODAY: Counts(sent=100, delivered=90, bounced=5, complained=1),
        DAYS[0]: Counts(sent=10, delivered=10, bounced=1),
    }
    points = day_points(DAYS, counts, {}, min_volume=50)
    today, first, quiet = points[-1], points[0], points[1]
    assert today.bounce_rate == 0.05 and today.complaint_rate == pytest.approx(1 / 90)
    assert today.judged and not first.judged
    assert quiet.counts == Counts() and quiet.bounce_rate == 0.0 and not quiet.judged


def _points(sent: list[int], limit: int | None = 500) -> list[DayPoint]:
    days = DAYS[-len(sent) :]
    counts = {
        d: Counts(sent=s, delivered=s, bounced=s // 50) for d, s in zip(days, sent, strict=True)
    }
    limits = {d: LimitOnDay(limit, False) for d in days} if limit is not None else {}
    return day_points(days, counts, limits, min_volume=CONFIG.min_volume)


def test_volume_chart_draws_a_bar_per_day_with_mail_and_the_limit_as_one_step_line() -> None:
    points = _points([0, 100, 200, 400])
    chart = volume_chart(points)
    sent_bars = [b for b in chart.bars if b.kind == "sent"]
    assert [b.tooltip for b in sent_bars] == [
        "2025-03-08: 100 sent", "2025-03-09: 200 sent", "2025-03-10: 400 sent",
    ]  # fmt: skip
    # Taller for more mail; every bar stands on the baseline.
    assert sent_bars[0].height < sent_bars[1].height < sent_bars[2].height
    assert all(b.y + b.height == pytest.approx(HEIGHT - BOTTOM) for b in chart.bars)
    [limit] = chart.lines
    ys = {float(pair.split(",")[1]) for pair in limit.points.split()}
    assert len(ys) == 1 and TOP <= ys.pop() < HEIGHT - BOTTOM  # the limit is inside the plot
    assert chart.y_ticks[-1].label == "600" and chart.y_ticks[0].label == "0"
    assert "Busiest day 2025-03-10: 400 sent against a limit of 500." in chart.description
    assert chart.x_ticks[-1].anchor == "end" and chart.x_ticks[-1].label == "Mar 10"


def test_volume_chart_without_a_known_limit_draws_no_limit_line() -> None:
    chart = volume_chart(_points([10, 20], limit=None))
    assert chart.lines == []
    assert "limit" not in chart.description.split("Busiest")[1]


def test_rate_chart_marks_days_too_small_to_judge_and_draws_both_thresholds() -> None:
    points = _points([0, 20, 100, 200])
    chart = rate_chart(points, which="bounce", review=CONFIG.review, clean=CONFIG.clean)
    assert [m.judged for m in chart.markers] == [False, True, True]
    assert "too few sends to judge" in chart.markers[0].tooltip
    review, clean = chart.rules
    assert (review.kind, clean.kind) == ("review", "clean")
    assert review.y < clean.y  # 5% is drawn above 2%
    assert [item.label for item in chart.legend] == ["bounce rate", "SES review 5%", "clean 2%"]
    assert "the highest bounce rate was 2% on 2025-03-09" in chart.description
    assert "2 reached the clean threshold and 0 the review threshold" in chart.description


def test_a_rate_over_the_axis_top_stretches_the_axis() -> None:
    counts = {TODAY: Counts(sent=100, delivered=100, bounced=40)}
    points = day_points(DAYS, counts, {}, min_volume=50)
    chart = rate_chart(points, which="bounce", review=CONFIG.review, clean=CONFIG.clean)
    [marker] = chart.markers
    assert marker.y >= TOP and chart.lines == []  # one point: a dot, no line
    assert chart.y_ticks[-1].label in {"40%", "50%"}


def test_no_judged_day_says_so() -> None:
    chart = rate_chart(_points([0, 0]), which="complaint", review=CONFIG.review, clean=CONFIG.clean)
    assert chart.markers == []
    assert chart.description.endswith("No day in the last 30 sent enough mail to judge.")


@pytest.mark.parametrize(
    ("rate", "text"), [(0.05, "5%"), (0.0005, "0.05%"), (0.0125, "1.25%"), (0.0, "0%"),
                       (1 / 3, "33.333%")],
)  # fmt: skip
def test_percent(rate: float, text: str) -> None:
    assert percent(rate) == text


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=1e-6, max_value=1e9, allow_nan=False))
def test_nice_ceiling_covers_the_value_in_a_few_round_steps(value: float) -> None:
    top, step = nice_ceiling(value)
    assert top >= value * (1 - 1e-9)
    assert 1 <= round(top / step) <= 5
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert round(mantissa, 6) in {1.0, 2.0, 2.5, 5.0}


def test_nice_ceiling_of_nothing_is_a_unit_axis() -> None:
    assert nice_ceiling(0) == (1.0, 0.25)


def test_chart_days_can_start_mid_window() -> None:
    start = TODAY - timedelta(days=2)
    limits = limits_by_day(DAYS, [(at(start), {"mode": "auto", "daily_limit": 200})])
    chart = volume_chart(day_points(DAYS, {}, limits, min_volume=50))
    [line] = chart.lines
    assert len(line.points.split()) == 6  # three days, two corners each
