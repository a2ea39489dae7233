"""Pure suppression rules: address keys, expiry, soft-bounce limits, resubscribe."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.preferences.decision import SuppressionReason, SuppressionView
from scheduler.preferences.suppression import (
    RESUBSCRIBE_CLEARS,
    clears_on_resubscribe,
    email_hash,
    in_force,
    is_in_force,
    normalize_email,
    soft_bounce_expiry,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)

# --- addresses -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["Ann@Example.COM", "  ann@example.com\t", "ANN@EXAMPLE.COM\n", "ann@example.com"],
)
def test_normalize_strips_and_lowercases_the_whole_address(raw: str) -> None:
    assert normalize_email(raw) == "ann@example.com"


def test_normalize_keeps_the_inside_of_the_address() -> None:
    assert normalize_email(" First.Last+Tag@Sub.Example.org ") == "first.last+tag@sub.example.org"


@pytest.mark.parametrize("raw", ["", "   ", "\t\n"])
def test_normalize_refuses_an_empty_address(raw: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        normalize_email(raw)


def test_email_hash_is_sha256_of_the_normalized_address() -> None:
    expected = hashlib.sha256(b"ann@example.com").hexdigest()
    assert email_hash(" Ann@Example.com ") == expected
    assert re.fullmatch(r"[0-9a-f]{64}", expected)


def test_email_hash_tells_addresses_apart() -> None:
    assert email_hash("ann@example.com") != email_hash("anne@example.com")


def test_email_hash_hashes_utf8() -> None:
    assert email_hash("Zoë@Example.com") == hashlib.sha256("zoë@example.com".encode()).hexdigest()


@settings(max_examples=200, deadline=None)
@given(st.emails())
def test_hash_ignores_case_and_surrounding_space(address: str) -> None:
    variants = {address, address.upper(), f"  {address.swapcase()} "}
    assert len({email_hash(v) for v in variants}) == 1


# --- in force ------------------------------------------------------------------------------


def test_a_suppression_without_expiry_is_permanent() -> None:
    assert is_in_force(SuppressionView("hard_bounce"), NOW + 3650 * DAY)


def test_a_suppression_is_in_force_until_its_expiry_exclusive() -> None:
    suppression = SuppressionView("soft_bounce", NOW)
    assert is_in_force(suppression, NOW - timedelta(microseconds=1))
    assert not is_in_force(suppression, NOW)


def test_in_force_drops_expired_and_puts_the_most_severe_first() -> None:
    rows = [
        SuppressionView("soft_bounce", NOW + DAY),
        SuppressionView("manual"),
        SuppressionView("mystery"),
        SuppressionView("hard_bounce", NOW - DAY),  # expired (a manual row with an expiry)
        SuppressionView("unsubscribe_all"),
        SuppressionView("complaint"),
        SuppressionView("account_deleted"),
    ]
    assert [s.reason for s in in_force(rows, NOW)] == [
        "account_deleted",
        "complaint",
        "manual",
        "soft_bounce",
        "mystery",
        "unsubscribe_all",
    ]


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        SuppressionView("soft_bounce", datetime(2026, 3, 10))
    with pytest.raises(ValueError, match="naive"):
        is_in_force(SuppressionView("manual"), datetime(2026, 3, 10))


# --- soft bounces --------------------------------------------------------------------------


def test_fewer_than_the_limit_never_suppress() -> None:
    assert soft_bounce_expiry([], now=NOW) is None
    assert soft_bounce_expiry([NOW - DAY, NOW], now=NOW) is None


def test_three_within_seven_days_suppress_for_fourteen_days_from_the_third() -> None:
    bounces = [NOW - 6 * DAY, NOW - 2 * DAY, NOW]
    assert soft_bounce_expiry(bounces, now=NOW) == NOW + 14 * DAY


def test_the_window_is_inclusive() -> None:
    assert soft_bounce_expiry([NOW - 7 * DAY, NOW - DAY, NOW], now=NOW) == NOW + 14 * DAY
    spread = [NOW - 7 * DAY - timedelta(seconds=1), NOW - DAY, NOW]
    assert soft_bounce_expiry(spread, now=NOW) is None


def test_order_and_zone_of_the_input_do_not_matter() -> None:
    from zoneinfo import ZoneInfo

    tokyo = ZoneInfo("Asia/Tokyo")
    bounces = [NOW.astimezone(tokyo), NOW - 5 * DAY, (NOW - 3 * DAY).astimezone(tokyo)]
    assert soft_bounce_expiry(bounces, now=NOW) == NOW + 14 * DAY


def test_the_expiry_depends_on_the_bounces_not_on_when_they_are_processed() -> None:
    bounces = [NOW - DAY, NOW - 12 * timedelta(hours=1), NOW]
    assert soft_bounce_expiry(bounces, now=NOW) == NOW + 14 * DAY
    assert soft_bounce_expiry(bounces, now=NOW + 13 * DAY) == NOW + 14 * DAY
    assert soft_bounce_expiry(bounces, now=NOW + 14 * DAY) is None  # already over


def test_the_latest_run_that_reaches_the_limit_counts() -> None:
    early = [NOW - 30 * DAY, NOW - 29 * DAY, NOW - 28 * DAY]
    late = [NOW - 2 * DAY, NOW - DAY, NOW]
    assert soft_bounce_expiry(early + late, now=NOW) == NOW + 14 * DAY
    assert soft_bounce_expiry(early, now=NOW) is None  # that suppression ran out days ago


def test_the_limit_window_and_cooloff_are_parameters() -> None:
    bounces = [NOW - 20 * DAY, NOW]
    assert soft_bounce_expiry(bounces, now=NOW, limit=2, window=30 * DAY, cooloff=DAY) == NOW + DAY
    assert soft_bounce_expiry([NOW], now=NOW, limit=1, cooloff=2 * DAY) == NOW + 2 * DAY
    assert soft_bounce_expiry(bounces, now=NOW, limit=2) is None


@pytest.mark.parametrize(
    "kwargs",
    [{"limit": 0}, {"window": -DAY}, {"cooloff": timedelta(0)}],
)
def test_nonsense_limits_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="soft-bounce"):
        soft_bounce_expiry([NOW], now=NOW, **kwargs)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 60 * 24), max_size=12))
def test_an_expiry_means_three_bounces_within_a_week(offsets_hours: list[int]) -> None:
    bounces = [NOW - timedelta(hours=h) for h in offsets_hours]
    expiry = soft_bounce_expiry(bounces, now=NOW)
    windows_with_three = [
        b for b in bounces if sum(b - 7 * DAY <= other <= b for other in bounces) >= 3
    ]
    if expiry is None:
        assert all(b + 14 * DAY <= NOW for b in windows_with_three)
    else:
        assert expiry == max(windows_with_three) + 14 * DAY
        assert expiry > NOW


# --- resubscribe ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "clears"),
    [
        ("unsubscribe_all", True),
        ("hard_bounce", False),
        ("complaint", False),
        ("account_deleted", False),
        ("manual", False),
        ("soft_bounce", False),
        ("something_new", False),
    ],
)
def test_only_an_unsubscribe_all_is_cleared_by_resubscribing(reason: str, clears: bool) -> None:
    assert clears_on_resubscribe(reason) is clears


def test_resubscribe_clears_exactly_the_recipients_own_choice() -> None:
    assert frozenset({"unsubscribe_all"}) == RESUBSCRIBE_CLEARS
    assert {r for r in SuppressionReason if clears_on_resubscribe(r)} == {
        SuppressionReason.UNSUBSCRIBE_ALL
    }
