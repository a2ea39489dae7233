"""The send-side limiter's pure pieces besides the daily policy: no database, no clock.

Over the limit, messages wait in one order (essential first, then earliest due) and expire
once they are later than their topic's ``max_lateness``; under it, sends are paced by a
counting window whose SQL twin :class:`scheduler.delivery.ramp.RampStore` runs
(DESIGN.md §9). The daily limit itself is :mod:`scheduler.delivery.ramp_policy`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from scheduler.clock import utc

# --- over the limit: who waits, who expires ------------------------------------------


@dataclass(frozen=True)
class WaitingItem:
    """A queued message the limiter could not grant yet."""

    message_id: int | str
    essential: bool
    due_at: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "due_at", utc(self.due_at))  # refuses a naive datetime


def order_waiting(items: Sequence[WaitingItem]) -> list[WaitingItem]:
    """Essential first, then earliest due; ties keep their given order (sort is stable)."""
    return sorted(items, key=lambda item: (not item.essential, item.due_at))


def expired(item: WaitingItem, *, now: datetime, max_lateness: timedelta | None) -> bool:
    """True once ``now`` is strictly later than due + ``max_lateness`` (None: never).

    A reminder that arrives after the thing it reminds of is noise, so a message that has
    waited past its topic's lateness budget is expired rather than sent (DESIGN.md §5, §9).
    """
    if max_lateness is None:
        return False
    if max_lateness < timedelta(0):
        raise ValueError("max_lateness must not be negative")
    return utc(now) - item.due_at > max_lateness


# --- pacing: the per-second rate -----------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SLACK = 1e-9  # float noise: 1/3 of a message a second is a 3-second window, not 4


@dataclass(frozen=True)
class PacingWindow:
    """A counting window of whole seconds that holds ``capacity`` sends.

    Rates of 1/s or more use one-second windows holding ``floor(rate)``; a rate under 1/s
    uses a window of ``ceil(1/rate)`` seconds holding one. Rounding always lands under the
    rate, never over: going over SES's ``MaxSendRate`` costs a Throttling error and a retry.
    """

    seconds: int
    capacity: int

    @classmethod
    def for_rate(cls, rate_per_second: float) -> PacingWindow:
        if not (math.isfinite(rate_per_second) and rate_per_second > 0):
            raise ValueError(f"rate_per_second must be > 0, got {rate_per_second}")
        if rate_per_second >= 1 - _SLACK:
            return cls(seconds=1, capacity=max(1, math.floor(rate_per_second + _SLACK)))
        return cls(seconds=math.ceil(1 / rate_per_second - _SLACK), capacity=1)

    def start(self, now: datetime) -> datetime:
        """Start of the window holding ``now``, aligned to the Unix epoch (the counter key)."""
        elapsed = math.floor((utc(now) - _EPOCH).total_seconds())
        return _EPOCH + timedelta(seconds=elapsed - elapsed % self.seconds)


def grant_count(
    requested: int,
    *,
    used_today: int,
    daily_limit: int,
    used_this_second: int,
    rate_per_second: float,
) -> int:
    """How many of ``requested`` sends may go now: the least of what is asked, what is left
    of today's limit, and what is left of the current pacing window.

    ``used_this_second`` counts sends already granted in the current
    :class:`PacingWindow` (one second unless the rate is under 1/s). This is the pure twin
    of the conditional UPDATE the store runs; across workers the database statement is the
    authority, because only it sees every worker's grants atomically. A limit lowered
    below what was already used grants nothing; a rate of 0 or less grants nothing.
    """
    if min(requested, used_today, used_this_second) < 0:
        raise ValueError("requested and used counts must be >= 0")
    if math.isnan(rate_per_second):
        raise ValueError("rate_per_second is NaN")
    if rate_per_second <= 0:
        return 0
    window = PacingWindow.for_rate(rate_per_second)
    left_today = max(0, daily_limit - used_today)
    left_in_window = max(0, window.capacity - used_this_second)
    return min(requested, left_today, left_in_window)
