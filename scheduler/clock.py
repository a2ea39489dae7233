"""The one place that reads the current time.

Everything below the composition root takes ``now`` as a parameter; only the stages'
entry points ask a :class:`Clock`. Tests pass :class:`FixedClock` or use freezegun.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time, always timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that says what it is told (``reminders tick --now``, tests)."""

    def __init__(self, at: datetime) -> None:
        self.set(at)

    def set(self, at: datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self._at


def utc(value: datetime) -> datetime:
    """Normalise an aware datetime to UTC; refuse a naive one (it has no instant)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: an instant needs an offset")
    return value.astimezone(UTC)
