from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.delivery.retry import DEFAULT_CAP, backoff_delay

BASE = timedelta(seconds=5)
CAP = timedelta(minutes=10)


def almost_one() -> float:
    return 0.999999


@pytest.mark.parametrize(
    ("attempt", "ceiling_seconds"), [(1, 5), (2, 10), (3, 20), (4, 40), (7, 320), (8, 600)]
)
def test_ceiling_doubles_until_the_cap(attempt: int, ceiling_seconds: float) -> None:
    delay = backoff_delay(attempt, base=BASE, cap=CAP, rand=almost_one)
    expected = timedelta(seconds=ceiling_seconds * 0.999999)
    assert abs(delay - expected) < timedelta(milliseconds=1)


def test_full_jitter_scales_the_whole_interval() -> None:
    assert backoff_delay(3, base=BASE, cap=CAP, rand=lambda: 0.0) == timedelta(0)
    assert backoff_delay(3, base=BASE, cap=CAP, rand=lambda: 0.5) == timedelta(seconds=10)


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    assert backoff_delay(10_000, rand=lambda: 0.5) == DEFAULT_CAP / 2


@settings(max_examples=200, deadline=None)
@given(attempt=st.integers(1, 500), fraction=st.floats(0.0, 1.0, exclude_max=True))
def test_delay_is_within_zero_and_cap(attempt: int, fraction: float) -> None:
    delay = backoff_delay(attempt, base=BASE, cap=CAP, rand=lambda: fraction)
    assert timedelta(0) <= delay <= CAP


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "fraction"),
    [
        (0, BASE, CAP, 0.5),
        (1, timedelta(0), CAP, 0.5),
        (1, CAP, BASE, 0.5),
        (1, BASE, CAP, 1.0),
        (1, BASE, CAP, -0.1),
    ],
)
def test_bad_arguments_are_refused(
    attempt: int, base: timedelta, cap: timedelta, fraction: float
) -> None:
    with pytest.raises(ValueError):
        backoff_delay(attempt, base=base, cap=cap, rand=lambda: fraction)
