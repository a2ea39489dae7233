"""How long to wait before retrying a send (pure).

Exponential backoff with "full jitter": the delay is uniform in ``[0, min(cap, base ·
2^(attempt-1)))``. Spreading retries over the whole interval keeps many throttled workers
from retrying in lock-step, and AWS's measurements found it the cheapest of the variants:
https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
The default cap follows SES's advice to wait "up to 10 minutes" after a throttling error.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Final

DEFAULT_BASE: Final = timedelta(seconds=5)
DEFAULT_CAP: Final = timedelta(minutes=10)
# 2**62 seconds is far past any cap; stopping there keeps the float math finite.
_MAX_EXPONENT: Final = 62


def backoff_delay(
    attempt: int,
    *,
    base: timedelta = DEFAULT_BASE,
    cap: timedelta = DEFAULT_CAP,
    rand: Callable[[], float],
) -> timedelta:
    """Delay before retry number ``attempt`` (1 = the first retry).

    ``rand`` returns a float in ``[0, 1)``, e.g. ``random.random``; tests pass a constant.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    if base <= timedelta(0) or cap < base:
        raise ValueError("need 0 < base <= cap")
    fraction = rand()
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"rand() must return a float in [0, 1), got {fraction!r}")
    exponent = min(attempt - 1, _MAX_EXPONENT)
    ceiling = min(cap.total_seconds(), base.total_seconds() * 2.0**exponent)
    return timedelta(seconds=ceiling * fraction)
