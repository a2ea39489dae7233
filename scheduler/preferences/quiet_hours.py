"""Quiet hours: is an instant inside a recipient's local quiet window, and when does it end?

A window is a pair of local wall times, so on DST days its ends are read exactly as the
rest of the engine reads wall times (RFC 5545 §3.3.5, DESIGN §5):

- a wall time that does not exist (spring forward) takes the UTC offset from *before* the
  gap, which is what ``zoneinfo`` does with ``fold=0``: in New York on 2026-03-08 an end
  of 02:30 is 07:30Z, which the clock shows as 03:30 EDT;
- a wall time that occurs twice (fall back) means the *first* occurrence, also ``fold=0``.

Aware datetimes that share a tzinfo compare by wall clock and ignore ``fold``
(https://peps.python.org/pep-0495/#aware-datetime-equality-comparison), so every
comparison here is made between UTC instants, never between local datetimes.

https://www.rfc-editor.org/rfc/rfc5545#section-3.3.5
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scheduler.preferences.decision import QuietHours

# Windows that could contain an instant start on its local day or the day before (a
# window crossing midnight). The day after is checked too, for an offset change that
# jumps the local date backwards (Pacific/Kwajalein jumped back 23 hours in 1969).
_START_DAY_OFFSETS = (-1, 0, 1)

# An end read with the pre-gap offset can land after the next window's start (03:00–02:30
# on a spring-forward day), so windows can overlap; following ends a few times settles on
# an instant outside every window.
_MAX_CHAINED_WINDOWS = 4


def wall_time_instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of a local wall time, with RFC 5545's DST reading (``fold=0``)."""
    return datetime.combine(day, wall, tzinfo=zone).replace(fold=0).astimezone(UTC)


def _window(quiet: QuietHours, zone: ZoneInfo, start_day: date) -> tuple[datetime, datetime]:
    """The [start, end) UTC instants of the window that starts on ``start_day`` local."""
    end_day = start_day if quiet.start < quiet.end else start_day + timedelta(days=1)
    return (
        wall_time_instant(start_day, quiet.start, zone),
        wall_time_instant(end_day, quiet.end, zone),
    )


def _ends_of_windows_containing(
    quiet: QuietHours, zone: ZoneInfo, instant: datetime
) -> list[datetime]:
    local_day = instant.astimezone(zone).date()
    ends = []
    for offset in _START_DAY_OFFSETS:
        start, end = _window(quiet, zone, local_day + timedelta(days=offset))
        # A window whose start lands after its end (both ends inside one DST gap) is empty.
        if start <= instant < end:
            ends.append(end)
    return ends


def quiet_window_end(quiet: QuietHours, zone: ZoneInfo, at: datetime) -> datetime | None:
    """If ``at`` is inside the quiet window in ``zone``, the UTC instant the window ends.

    Returns ``None`` when ``at`` is outside every window (or the window is empty). The
    start is inclusive and the end exclusive, so the returned instant is itself allowed.
    """
    if at.tzinfo is None:
        raise ValueError("quiet_window_end needs an aware datetime")
    if quiet.is_empty:
        return None
    instant = at.astimezone(UTC)
    ends = _ends_of_windows_containing(quiet, zone, instant)
    if not ends:
        return None
    end = max(ends)
    for _ in range(_MAX_CHAINED_WINDOWS):
        later = _ends_of_windows_containing(quiet, zone, end)
        if not later:
            break
        end = max(later)
    return end


def is_quiet(quiet: QuietHours, zone: ZoneInfo, at: datetime) -> bool:
    """Whether ``at`` falls inside the quiet window."""
    return quiet_window_end(quiet, zone, at) is not None
