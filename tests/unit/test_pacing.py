"""The limiter's pure pacing pieces: waiting order, expiry, pacing windows and grants."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.delivery.pacing import PacingWindow, WaitingItem, expired, grant_count, order_waiting

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


# --- waiting order and expiry -----------------------------------------------------------


def test_essential_first_then_earliest_due_stable() -> None:
    a = WaitingItem(1, essential=False, due_at=NOW)
    b = WaitingItem(2, essential=True, due_at=NOW + timedelta(minutes=5))
    c = WaitingItem(3, essential=False, due_at=NOW - timedelta(minutes=1))
    d = WaitingItem(4, essential=True, due_at=NOW)
    e = WaitingItem(5, essential=False, due_at=NOW)  # ties with a: keeps given order
    assert [i.message_id for i in order_waiting([a, b, c, d, e])] == [4, 2, 3, 1, 5]


def test_waiting_items_compare_instants_across_offsets() -> None:
    tokyo = timezone(timedelta(hours=9))
    early = WaitingItem(
        "m-tokyo", essential=False, due_at=datetime(2026, 3, 2, 17, 0, tzinfo=tokyo)
    )
    late = WaitingItem("m-utc", essential=False, due_at=datetime(2026, 3, 2, 8, 30, tzinfo=UTC))
    assert order_waiting([late, early]) == [early, late]
    assert early.due_at.tzinfo is UTC


def test_waiting_item_refuses_a_naive_due_time() -> None:
    with pytest.raises(ValueError):
        WaitingItem(1, essential=False, due_at=datetime(2026, 3, 2, 9, 0))


def test_expiry_is_strictly_past_max_lateness() -> None:
    item = WaitingItem(1, essential=False, due_at=NOW)
    lateness = timedelta(hours=2)
    assert not expired(item, now=NOW + lateness, max_lateness=lateness)
    assert expired(item, now=NOW + lateness + timedelta(microseconds=1), max_lateness=lateness)
    assert not expired(item, now=NOW - timedelta(hours=1), max_lateness=timedelta(0))
    assert not expired(item, now=NOW + timedelta(days=400), max_lateness=None)


def test_expiry_refuses_naive_now_and_negative_lateness() -> None:
    item = WaitingItem(1, essential=True, due_at=NOW)
    with pytest.raises(ValueError):
        expired(item, now=datetime(2026, 3, 2, 9, 0), max_lateness=timedelta(hours=1))
    with pytest.raises(ValueError):
        expired(item, now=NOW, max_lateness=timedelta(seconds=-1))


# --- pacing -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "seconds", "capacity"),
    [
        (1.0, 1, 1),
        (14.0, 1, 14),
        (2.5, 1, 2),
        (13.88, 1, 13),
        (0.5, 2, 1),
        (1 / 3, 3, 1),
        (0.3, 4, 1),
        (0.999999999999, 1, 1),
    ],
)
def test_pacing_window_for_rate(rate: float, seconds: int, capacity: int) -> None:
    assert PacingWindow.for_rate(rate) == PacingWindow(seconds, capacity)


@pytest.mark.parametrize("rate", [0.0, -1.0, math.nan, math.inf])
def test_pacing_window_refuses_bad_rates(rate: float) -> None:
    with pytest.raises(ValueError):
        PacingWindow.for_rate(rate)


def test_pacing_window_start_is_epoch_aligned() -> None:
    at = datetime(2026, 3, 2, 9, 0, 7, 250_000, tzinfo=UTC)
    assert PacingWindow(1, 14).start(at) == datetime(2026, 3, 2, 9, 0, 7, tzinfo=UTC)
    assert PacingWindow(4, 1).start(at) == datetime(2026, 3, 2, 9, 0, 4, tzinfo=UTC)
    paris = timezone(timedelta(hours=1))
    same = datetime(2026, 3, 2, 10, 0, 7, 250_000, tzinfo=paris)
    assert PacingWindow(4, 1).start(same) == datetime(2026, 3, 2, 9, 0, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    ("requested", "used_today", "daily_limit", "used_now", "rate", "granted"),
    [
        (10, 0, 200, 0, 14.0, 10),  # all of it
        (20, 0, 200, 0, 14.0, 14),  # the window caps
        (20, 0, 200, 10, 14.0, 4),  # part of the window is used
        (20, 195, 200, 0, 14.0, 5),  # the day caps
        (20, 200, 200, 0, 14.0, 0),  # the day is spent
        (20, 250, 200, 0, 14.0, 0),  # the limit was lowered under what was used
        (20, 0, 200, 14, 14.0, 0),  # the window is spent
        (20, 0, 200, 20, 14.0, 0),  # over-spent window (another worker raced): nothing
        (0, 0, 200, 0, 14.0, 0),  # nothing asked
        (5, 0, 200, 0, 0.5, 1),  # one per two-second window
        (5, 0, 200, 1, 0.5, 0),
        (5, 0, 0, 0, 14.0, 0),  # a zero limit sends nothing
        (5, 0, 200, 0, 0.0, 0),  # a zero rate sends nothing
        (5, 0, 200, 0, 2.9, 2),  # rounds under the rate
    ],
)
def test_grant_count(
    requested: int, used_today: int, daily_limit: int, used_now: int, rate: float, granted: int
) -> None:
    got = grant_count(
        requested,
        used_today=used_today,
        daily_limit=daily_limit,
        used_this_second=used_now,
        rate_per_second=rate,
    )
    assert got == granted


@pytest.mark.parametrize(
    ("requested", "used_today", "used_now", "rate"),
    [(-1, 0, 0, 1.0), (1, -1, 0, 1.0), (1, 0, -1, 1.0), (1, 0, 0, math.nan)],
)
def test_grant_count_refuses_nonsense(
    requested: int, used_today: int, used_now: int, rate: float
) -> None:
    with pytest.raises(ValueError):
        grant_count(
            requested,
            used_today=used_today,
            daily_limit=100,
            used_this_second=used_now,
            rate_per_second=rate,
        )


# --- invariants ------------------------------------------------------------------------------

counts = st.integers(min_value=0, max_value=2_000_000)


@settings(max_examples=200, deadline=None)
@given(counts, counts, counts, st.integers(0, 2_000), st.floats(0.001, 500, allow_nan=False))
def test_grants_never_exceed_any_budget(
    requested: int, used_today: int, daily_limit: int, used_now: int, rate: float
) -> None:
    granted = grant_count(
        requested,
        used_today=used_today,
        daily_limit=daily_limit,
        used_this_second=used_now,
        rate_per_second=rate,
    )
    window = PacingWindow.for_rate(rate)
    assert 0 <= granted <= requested
    assert granted == 0 or used_today + granted <= daily_limit
    assert granted == 0 or used_now + granted <= window.capacity
    assert window.capacity / window.seconds <= rate * (1 + 1e-9)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.builds(
            WaitingItem,
            st.integers(),
            st.booleans(),
            st.datetimes(timezones=st.just(UTC)),
        ),
        max_size=30,
    )
)
def test_waiting_order_is_a_sorted_permutation(items: list[WaitingItem]) -> None:
    ordered = order_waiting(items)
    assert sorted(map(id, ordered)) == sorted(map(id, items))
    for first, second in itertools.pairwise(ordered):
        assert first.essential >= second.essential
        if first.essential == second.essential:
            assert first.due_at <= second.due_at
