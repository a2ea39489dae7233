"""The pure ramp-up policy: scripted days, modes and validation."""

from __future__ import annotations

import math
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.delivery.ramp_policy import (
    DEFAULT_LADDER,
    DayFigures,
    DayHealth,
    Quota,
    RampAction,
    RampConfig,
    RampDecision,
    RampMode,
    RampState,
    Thresholds,
    day_health,
    describe,
    initial_state,
    next_day,
    validate_manual_change,
)
from scheduler.errors import ConfigurationError, InvalidInput

CONFIG = RampConfig()
DAY = date(2026, 3, 2)


def figures(
    sent: int,
    *,
    bounced: int = 0,
    complained: int = 0,
    delivered: int | None = None,
    rejected: int = 0,
    day: date = DAY,
) -> DayFigures:
    if delivered is None:
        delivered = sent - bounced
    return DayFigures(day, sent, delivered, bounced, complained, rejected)


def state(
    limit: int, mode: RampMode = RampMode.AUTO, rate: float = 1.0, reason: str = "set up"
) -> RampState:
    return RampState(mode, limit, rate, CONFIG.step_for(limit), reason)


def full_clean_day(current: RampState, day: date = DAY) -> DayFigures:
    return figures(current.daily_limit, day=day)


# --- configuration and value types ----------------------------------------------------


def test_defaults_are_the_documented_ones() -> None:
    assert CONFIG.start_daily_limit == 200
    assert CONFIG.ladder == DEFAULT_LADDER
    assert CONFIG.ladder[:4] == (200, 500, 1_000, 2_000)
    assert CONFIG.min_volume == 50
    assert CONFIG.clean == Thresholds(bounce=0.02, complaint=0.0005)
    assert CONFIG.review == Thresholds(bounce=0.05, complaint=0.001)
    assert CONFIG.clean.bounce < CONFIG.cut.bounce < CONFIG.review.bounce
    assert CONFIG.clean.complaint < CONFIG.cut.complaint < CONFIG.review.complaint
    assert CONFIG.cut_steps == 2
    assert CONFIG.rate_per_second == 1.0


@pytest.mark.parametrize(
    "changes",
    [
        {"ladder": ()},
        {"ladder": (0, 100)},
        {"ladder": (200, 200, 500)},
        {"ladder": (500, 200)},
        {"clean": Thresholds(bounce=0.04, complaint=0.0005)},  # clean above cut
        {"review": Thresholds(bounce=0.05, complaint=0.0001)},  # review under cut
        {"clean": Thresholds(bounce=0.0, complaint=0.0005)},
        {"review": Thresholds(bounce=1.5, complaint=0.001)},
        {"cut": Thresholds(bounce=math.nan, complaint=0.0008)},
        {"min_volume": 0},
        {"cut_steps": 0},
        {"drain_seconds": 0},
        {"min_fill_to_grow": 1.5},
        {"rate_per_second": 0.0},
        {"rate_per_second": math.inf},
    ],
)
def test_config_refuses_nonsense(changes: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        RampConfig(**changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("limit", "step"),
    [(0, 0), (199, 0), (200, 0), (499, 0), (500, 1), (3_000, 3), (1_000_000, 11), (5_000_000, 11)],
)
def test_step_for_is_the_highest_step_at_or_below(limit: int, step: int) -> None:
    assert CONFIG.step_for(limit) == step


def test_auto_rate_follows_the_limit_above_the_floor() -> None:
    assert CONFIG.auto_rate(200) == 1.0
    assert CONFIG.auto_rate(3_600) == 1.0
    assert CONFIG.auto_rate(36_000) == 10.0
    assert CONFIG.auto_rate(50_000) == 13.88  # rounded down, never up


def test_quota_from_ses_send_quota() -> None:
    quota = Quota.from_send_quota(
        {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 3.0}
    )
    assert quota == Quota(50_000.0, 14.0)
    assert quota.daily_ceiling == 50_000
    assert quota.rate_ceiling == 14.0


def test_quota_minus_one_is_unlimited_and_fractions_floor() -> None:
    assert Quota(-1, -1).daily_ceiling is None
    assert Quota(-1, -1).rate_ceiling is None
    assert Quota(math.inf, 1).daily_ceiling is None
    assert Quota(199.9, 1).daily_ceiling == 199
    assert Quota(0, 1).daily_ceiling == 0


@pytest.mark.parametrize(("max_24h", "max_rate"), [(-2, 1), (math.nan, 1), (200, 0), (200, -0.5)])
def test_quota_refuses_other_negatives(max_24h: float, max_rate: float) -> None:
    with pytest.raises(ValueError):
        Quota(max_24h, max_rate)


def test_rates_and_their_denominators() -> None:
    day = figures(1_000, bounced=30, complained=2, delivered=950)
    assert day.bounce_rate == pytest.approx(0.03)  # over sent
    assert day.complaint_base == 950
    assert day.complaint_rate == pytest.approx(2 / 950)  # over delivered


def test_complaint_rate_falls_back_to_sent_without_delivery_events() -> None:
    day = figures(1_000, complained=1, delivered=0)
    assert day.complaint_base == 1_000
    assert day.complaint_rate == pytest.approx(0.001)


def test_an_empty_day_has_zero_rates() -> None:
    day = figures(0)
    assert (day.bounce_rate, day.complaint_rate) == (0.0, 0.0)


def test_counts_and_state_refuse_negatives() -> None:
    with pytest.raises(ValueError):
        DayFigures(DAY, 10, 10, -1, 0, 0)
    with pytest.raises(ValueError):
        RampState(RampMode.AUTO, -1, 1.0, 0, "x")
    with pytest.raises(ValueError):
        RampState(RampMode.AUTO, 200, 0.0, 0, "x")


@pytest.mark.parametrize(
    ("day", "health"),
    [
        (figures(1_000, bounced=19), DayHealth.CLEAN),
        (figures(1_000, bounced=20), DayHealth.GREY),
        (figures(10_000, complained=5, delivered=10_000), DayHealth.GREY),
        (figures(1_000, bounced=30), DayHealth.BAD),
        (figures(10_000, complained=8, delivered=10_000), DayHealth.BAD),
        (figures(1_000, bounced=49), DayHealth.BAD),
        (figures(1_000, bounced=50), DayHealth.REVIEW),
        (figures(1_000, complained=1, delivered=1_000), DayHealth.REVIEW),
        (figures(1_000, bounced=10, complained=1, delivered=990), DayHealth.REVIEW),
    ],
)
def test_day_health_bands(day: DayFigures, health: DayHealth) -> None:
    assert day_health(day, CONFIG) is health


# --- auto mode: scripted sequences -------------------------------------------------------


def test_a_fortnight_of_clean_days_climbs_the_ladder_one_step_a_day() -> None:
    current = initial_state(CONFIG, None)
    assert current.daily_limit == 200
    limits, actions = [], []
    for offset in range(14):
        decision = next_day(current, full_clean_day(current, DAY + timedelta(offset)), CONFIG, None)
        current = decision.state
        limits.append(current.daily_limit)
        actions.append(decision.action)
    assert limits == [*DEFAULT_LADDER[1:], 1_000_000, 1_000_000, 1_000_000]
    assert actions == [RampAction.GROW] * 11 + [RampAction.HOLD] * 3
    assert current.step == len(DEFAULT_LADDER) - 1
    assert current.mode is RampMode.AUTO


def test_growth_records_why_on_the_state() -> None:
    decision = next_day(state(1_000), figures(1_000, bounced=3), CONFIG, None)
    assert decision.action is RampAction.GROW
    assert decision.state == RampState(RampMode.AUTO, 2_000, 1.0, 3, decision.reason)
    assert "clean day" in decision.reason
    assert "1,000 -> 2,000/day" in decision.reason
    assert "0.30% (3 of 1,000 sent)" in decision.reason


def test_rate_grows_with_the_limit() -> None:
    decision = next_day(state(20_000), figures(20_000), CONFIG, None)
    assert decision.state.daily_limit == 50_000
    assert decision.state.rate_per_second == 13.88


@pytest.mark.parametrize(
    "day",
    [
        figures(1_000, bounced=25),  # bounce 2.5%: over clean, under cut
        figures(10_000, complained=6, delivered=10_000),  # complaint 0.06%
    ],
)
def test_a_grey_day_holds_and_keeps_the_state(day: DayFigures) -> None:
    before = state(1_000, reason="grew on a clean day")
    decision = next_day(before, day, CONFIG, None)
    assert decision.action is RampAction.HOLD
    assert decision.state is before  # nothing moved: no audit row, the old reason stays
    assert decision.reason.startswith("grey day")
    assert "clean limit" in decision.reason


def test_a_bad_day_cuts_two_steps_and_names_the_figure() -> None:
    decision = next_day(state(5_000), figures(5_000, bounced=175), CONFIG, None)
    assert decision.action is RampAction.CUT
    assert decision.state.daily_limit == 1_000
    assert decision.state.step == 2
    assert "bounce rate 3.50% (175 of 5,000 sent)" in decision.reason
    assert "5,000 -> 1,000/day" in decision.reason


def test_a_bad_complaint_day_cuts() -> None:
    day = figures(10_000, complained=9, delivered=10_000)
    decision = next_day(state(10_000), day, CONFIG, None)
    assert decision.action is RampAction.CUT
    assert decision.state.daily_limit == 2_000
    assert "complaint rate 0.090%" in decision.reason


def test_a_cut_between_steps_goes_back_from_the_step_below() -> None:
    decision = next_day(state(3_000), figures(3_000, bounced=100), CONFIG, None)
    assert decision.state.daily_limit == 500


def test_a_bad_day_on_the_lowest_step_stays_there() -> None:
    before = state(200)
    decision = next_day(before, figures(200, bounced=7), CONFIG, None)
    assert decision.action is RampAction.CUT
    assert decision.state is before
    assert "lowest step" in decision.reason


@pytest.mark.parametrize(
    ("day", "named"),
    [
        (figures(1_000, bounced=50), "bounce rate 5.00% (50 of 1,000 sent)"),
        (
            figures(2_000, complained=2, delivered=2_000),
            "complaint rate 0.100% (2 of 2,000 delivered)",
        ),
        (figures(1_000, complained=1, delivered=0), "complaint rate 0.100% (1 of 1,000 sent)"),
    ],
)
def test_review_thresholds_pause_with_the_figure_named(day: DayFigures, named: str) -> None:
    decision = next_day(state(2_000), day, CONFIG, None)
    assert decision.action is RampAction.PAUSE
    assert decision.state.mode is RampMode.PAUSED
    assert decision.state.daily_limit == 2_000  # kept for when an operator resumes
    assert named in decision.reason
    assert "SES's review threshold" in decision.reason
    assert decision.state.reason == decision.reason


def test_both_figures_over_review_are_both_named() -> None:
    day = figures(1_000, bounced=80, complained=5, delivered=920)
    reason = next_day(state(1_000), day, CONFIG, None).reason
    assert "bounce rate 8.00%" in reason
    assert "complaint rate 0.543%" in reason


def test_just_under_review_cuts_rather_than_pauses() -> None:
    decision = next_day(state(10_000), figures(10_000, bounced=499), CONFIG, None)
    assert decision.action is RampAction.CUT


@pytest.mark.parametrize(
    "day",
    [
        figures(49),  # clean but too quiet to count
        figures(49, bounced=10),  # 20% bounces over 49 sends is noise, not evidence
        figures(0),
    ],
)
def test_a_low_volume_day_holds(day: DayFigures) -> None:
    before = state(1_000)
    decision = next_day(before, day, CONFIG, None)
    assert decision.action is RampAction.HOLD
    assert decision.state is before
    assert "fewer than the 50 needed to judge" in decision.reason


def test_min_volume_itself_is_enough() -> None:
    assert next_day(state(200), figures(50), CONFIG, None).action is RampAction.GROW


def test_no_figures_holds() -> None:
    decision = next_day(state(1_000), None, CONFIG, None)
    assert decision.action is RampAction.HOLD
    assert "no figures" in decision.reason


def test_a_clean_day_far_under_the_limit_does_not_earn_a_step() -> None:
    hold = next_day(state(10_000), figures(2_499), CONFIG, None)
    assert hold.action is RampAction.HOLD
    assert "under 25% of the limit" in hold.reason
    assert next_day(state(10_000), figures(2_500), CONFIG, None).action is RampAction.GROW


def test_under_the_first_step_auto_climbs_to_it_without_evidence() -> None:
    decision = next_day(state(0), None, CONFIG, None)
    assert decision.action is RampAction.GROW
    assert decision.state.daily_limit == 200


def test_the_quota_ceiling_caps_growth_then_holds() -> None:
    quota = Quota(30_000, 14)
    grown = next_day(state(20_000), figures(20_000), CONFIG, quota)
    assert grown.action is RampAction.GROW
    assert grown.state.daily_limit == 30_000
    assert grown.state.step == CONFIG.step_for(30_000) == 6
    assert "capped at the SES quota of 30,000/day" in grown.reason
    held = next_day(grown.state, figures(30_000), CONFIG, quota)
    assert held.action is RampAction.HOLD
    assert held.state is grown.state
    assert "at the SES quota" in held.reason


def test_the_sandbox_quota_holds_a_new_stream_at_200() -> None:
    sandbox = Quota(200, 1)
    current = initial_state(CONFIG, sandbox)
    decision = next_day(current, figures(200), CONFIG, sandbox)
    assert decision.action is RampAction.HOLD
    assert decision.state.daily_limit == 200


def test_a_lowered_quota_cuts_the_limit() -> None:
    decision = next_day(state(50_000, rate=13.88), figures(100), CONFIG, Quota(10_000, 5))
    assert decision.action is RampAction.CUT
    assert decision.state.daily_limit == 10_000
    assert decision.state.step == CONFIG.step_for(10_000)
    assert decision.state.rate_per_second == 5
    assert "the SES quota allows only 10,000/day: 50,000 -> 10,000/day" in decision.reason


def test_the_rate_is_capped_at_the_quota_max_rate() -> None:
    decision = next_day(state(50_000), figures(50_000), CONFIG, Quota(-1, 14))
    assert decision.state.daily_limit == 100_000
    assert decision.state.rate_per_second == 14


def test_minus_one_means_no_ceiling() -> None:
    decision = next_day(state(500_000), figures(500_000), CONFIG, Quota(-1, -1))
    assert decision.state.daily_limit == 1_000_000
    assert decision.state.rate_per_second == 277.77


def test_auto_recomputes_a_rate_left_over_from_manual_mode() -> None:
    before = state(1_000, rate=9.0)
    decision = next_day(before, None, CONFIG, None)
    assert decision.action is RampAction.HOLD
    assert decision.state.rate_per_second == 1.0
    assert decision.state.reason == decision.reason  # the state moved, so it says why


# --- manual and paused modes -------------------------------------------------------------


@pytest.mark.parametrize(
    "day", [None, figures(20_000), figures(20_000, bounced=700), figures(10, bounced=10)]
)
def test_manual_keeps_the_operators_limit(day: DayFigures | None) -> None:
    before = state(7_000, RampMode.MANUAL, rate=3.0, reason="ops: launch week")
    decision = next_day(before, day, CONFIG, None)
    assert decision.action is RampAction.NONE
    assert decision.state is before
    assert "manual: the limit stays 7,000/day" in decision.reason


def test_manual_still_pauses_at_review_thresholds() -> None:
    before = state(7_000, RampMode.MANUAL, rate=3.0)
    decision = next_day(before, figures(7_000, bounced=400), CONFIG, None)
    assert decision.action is RampAction.PAUSE
    assert decision.state.mode is RampMode.PAUSED
    assert (decision.state.daily_limit, decision.state.rate_per_second) == (7_000, 3.0)
    assert "bounce rate 5.71%" in decision.reason


def test_manual_is_held_inside_a_lowered_quota() -> None:
    before = state(7_000, RampMode.MANUAL, rate=3.0)
    decision = next_day(before, None, CONFIG, Quota(5_000, 2))
    assert decision.action is RampAction.CUT
    assert decision.state.mode is RampMode.MANUAL
    assert (decision.state.daily_limit, decision.state.rate_per_second) == (5_000, 2)


@pytest.mark.parametrize("day", [None, figures(5_000), figures(5_000, bounced=1_000)])
def test_paused_stays_paused(day: DayFigures | None) -> None:
    before = state(5_000, RampMode.PAUSED, reason="bounce rate 6% on 2026-03-01")
    decision = next_day(before, day, CONFIG, None)
    assert decision == RampDecision(RampAction.NONE, before, decision.reason)
    assert "stays paused" in decision.reason
    assert "bounce rate 6% on 2026-03-01" in decision.reason


# --- operator changes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("daily", "rate", "reason", "quota", "field"),
    [
        (-1, None, "why", None, "daily_limit"),
        (50_001, None, "why", Quota(50_000, 14), "daily_limit"),
        (1_000, 0.0, "why", None, "rate_per_second"),
        (1_000, -2.0, "why", None, "rate_per_second"),
        (1_000, math.nan, "why", None, "rate_per_second"),
        (1_000, math.inf, "why", None, "rate_per_second"),
        (1_000, 14.5, "why", Quota(50_000, 14), "rate_per_second"),
        (1_000, 2.0, None, None, "reason"),
        (1_000, 2.0, "", None, "reason"),
        (1_000, 2.0, "   \n", None, "reason"),
    ],
)
def test_manual_change_refused_naming_the_field(
    daily: int, rate: float | None, reason: str | None, quota: Quota | None, field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        validate_manual_change(daily, rate, reason, quota)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("daily", "rate", "quota"),
    [
        (0, None, None),
        (50_000, 14.0, Quota(50_000, 14)),
        (10_000_000, 500.0, Quota(-1, -1)),
        (1_000, None, Quota(2_000, 1)),
    ],
)
def test_manual_change_accepted(daily: int, rate: float | None, quota: Quota | None) -> None:
    validate_manual_change(daily, rate, "ops: product launch", quota)


# --- describe ------------------------------------------------------------------------------


def test_describe_says_where_and_what_next_on_one_line() -> None:
    line = describe(state(1_000), figures(1_000), CONFIG, Quota(50_000, 14))
    assert line.startswith("auto at 1,000/day, 1/s (step 3 of 12), SES quota 50,000/day; ")
    assert "next: grow - clean day" in line
    assert "1,000 -> 2,000/day" in line
    assert "\n" not in line


def test_describe_paused_and_unlimited() -> None:
    line = describe(state(5_000, RampMode.PAUSED, reason="complaints"), None, CONFIG, Quota(-1, -1))
    assert line.startswith("paused at 5,000/day")
    assert "SES quota unlimited" in line
    assert "next: none - paused (complaints)" in line


def test_describe_does_not_invent_a_step_under_the_ladder() -> None:
    assert "step" not in describe(state(100, RampMode.MANUAL), None, CONFIG, None).split(";")[0]


# --- invariants ------------------------------------------------------------------------------

counts = st.integers(min_value=0, max_value=2_000_000)
quotas = st.none() | st.builds(
    Quota,
    st.sampled_from([-1.0, 0.0, 200.0, 50_000.0]) | st.floats(0, 5e6, allow_nan=False),
    st.sampled_from([-1.0, 1.0, 14.0]) | st.floats(0.01, 1_000, allow_nan=False),
)
states = st.builds(
    RampState,
    st.sampled_from(RampMode),
    counts,
    st.floats(0.01, 1_000, allow_nan=False),
    st.integers(0, len(DEFAULT_LADDER) - 1),
    st.text(max_size=20),
)


@st.composite
def days(draw: st.DrawFn) -> DayFigures | None:
    if draw(st.booleans()) and draw(st.booleans()):
        return None
    sent = draw(st.integers(0, 2_000_000))
    bounced = draw(st.integers(0, sent))
    delivered = draw(st.integers(0, sent - bounced))
    complained = draw(st.integers(0, max(delivered, 1)))
    return DayFigures(DAY, sent, delivered, bounced, complained, draw(st.integers(0, 10)))


def one_step_above(limit: int) -> int:
    return next((rung for rung in DEFAULT_LADDER if rung > limit), limit)


def check_invariants(before: RampState, decision: RampDecision, quota: Quota | None) -> None:
    after = decision.state
    assert after.daily_limit >= 0
    assert after.rate_per_second > 0
    if quota is not None and quota.daily_ceiling is not None:
        assert after.daily_limit <= quota.daily_ceiling
    if quota is not None and quota.rate_ceiling is not None:
        assert after.rate_per_second <= quota.rate_ceiling
    assert after.daily_limit <= max(before.daily_limit, one_step_above(before.daily_limit))
    if after.daily_limit > before.daily_limit:
        assert decision.action is RampAction.GROW
        assert before.mode is RampMode.AUTO
    if decision.action in (RampAction.HOLD, RampAction.NONE):
        assert after.daily_limit == before.daily_limit
    if before.mode is RampMode.PAUSED or decision.action is RampAction.PAUSE:
        assert after.mode is RampMode.PAUSED
    else:
        assert after.mode is before.mode
    if after != before:
        assert after.reason == decision.reason


@settings(max_examples=200, deadline=None)
@given(states, days(), quotas)
def test_one_decision_keeps_the_invariants(
    before: RampState, day: DayFigures | None, quota: Quota | None
) -> None:
    check_invariants(before, next_day(before, day, CONFIG, quota), quota)


@settings(max_examples=100, deadline=None)
@given(st.lists(days(), min_size=1, max_size=30), quotas)
def test_a_month_of_days_keeps_the_invariants(
    month: list[DayFigures | None], quota: Quota | None
) -> None:
    current = initial_state(CONFIG, quota)
    for day in month:
        decision = next_day(current, day, CONFIG, quota)
        check_invariants(current, decision, quota)
        current = decision.state


@settings(max_examples=200, deadline=None)
@given(states, days(), quotas)
def test_review_days_pause_any_unpaused_stream(
    before: RampState, day: DayFigures | None, quota: Quota | None
) -> None:
    decision = next_day(before, day, CONFIG, quota)
    judged = day is not None and day.sent >= CONFIG.min_volume
    review = judged and day is not None and day_health(day, CONFIG) is DayHealth.REVIEW
    if before.mode is not RampMode.PAUSED:
        assert (decision.action is RampAction.PAUSE) == review


def test_state_as_dict_is_the_row_and_audit_shape() -> None:
    current = RampState(RampMode.MANUAL, 5_000, 2.5, 4, "ops: launch")
    assert current.as_dict() == {
        "mode": "manual",
        "daily_limit": 5_000,
        "rate_per_second": 2.5,
        "step": 4,
        "reason": "ops: launch",
    }
    assert RampState(**{**current.as_dict(), "mode": RampMode(current.mode)}) == current
