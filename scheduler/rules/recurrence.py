"""When a schedule fires: RFC 5545 recurrence on the wall clock, compared in UTC. Pure.

Every function takes ``after``/``now`` as a parameter and returns aware UTC datetimes.

Semantics (DESIGN §5):

- rrule works on naive wall-clock time in the schedule's zone (DTSTART = ``start``), so a
  "09:00 local" rule stays 09:00 local across DST. Each wall time becomes an instant by
  :func:`local_to_utc` (RFC 5545 §3.3.5: a repeated time is its first occurrence, a missing
  one is read with the offset before the gap).
- A rule's instants are strictly increasing: a wall time whose instant is not later than
  one already produced is dropped. That removes duplicates (02:00 and 03:00 on a
  02:00→03:00 day are both 03:00; Pacific/Apia's skipped 2011-12-30 lands on 12-31) and,
  in the rare case where a gap-shifted time overtakes a real one (Lord Howe's 30-minute gap
  with BYMINUTE=15,40), keeps the order rather than firing into the past. COUNT counts
  wall times, as RFC 5545 and dateutil do, dropped ones included.
- ``rrule.after()`` walks from DTSTART (an hourly rule since 2016 costs ~0.2 s a call), so
  a rule keeps a :class:`RecurrenceState`: the wall time of its last real occurrence and
  the COUNT left. The next instant is computed from there. Anchoring only on a real
  occurrence keeps the INTERVAL phase; storing the remaining COUNT stops it resetting
  (reference/scheduling-engines.md §3 "Re-anchoring has two traps"). The property tests
  check the anchored walk against the plain rule.

The RRULE and DURATION grammars are read here too, since their parsed forms are what the
arithmetic consumes; ``schedules`` wraps them into the payload models.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import islice
from typing import TYPE_CHECKING, TypeAlias

from dateutil.rrule import rrule, rrulestr

from scheduler.clock import utc
from scheduler.errors import InvalidInput
from scheduler.rules.timezones import local_to_utc, utc_to_local

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from scheduler.rules.schedules import OnceSchedule, RelativeSchedule, Schedule

Walls: TypeAlias = rrule  # a dateutil rule over naive wall-clock datetimes

MAX_PREVIEW = 1000
CATCH_UP_LIMIT = 10_000


@dataclass(frozen=True)
class RecurrenceState:
    """What a recurring rule remembers between firings (store it with the rule).

    ``anchor_local`` is the naive wall time of the last real occurrence, ``None`` before the
    first; ``remaining_count`` is how many occurrences COUNT still allows, ``None`` for an
    unbounded rule. Before the first occurrence the count comes from the rule itself.
    Reset the state to ``RecurrenceState()`` whenever the schedule changes: an anchor is
    only meaningful for the rule that produced it.
    """

    anchor_local: datetime | None = None
    remaining_count: int | None = None


@dataclass(frozen=True)
class Planned:
    """The next instant a schedule fires, and the state to store once it has fired."""

    fire_at: datetime  # aware UTC
    state: RecurrenceState


@dataclass(frozen=True)
class CatchUp:
    """What the fire stage does at ``now``: the instants due, and what comes next.

    ``due`` holds the due instants in ascending order (at most ``limit``, the most recent);
    ``due_count`` counts all of them. Coalesce them into one occurrence at ``latest``,
    store ``state`` and ``next.fire_at`` (``next`` is None when the schedule is finished).
    """

    due: tuple[datetime, ...]
    due_count: int
    state: RecurrenceState
    next: Planned | None

    @property
    def latest(self) -> datetime | None:
        return self.due[-1] if self.due else None


# --- RFC 5545 §3.3.6 DURATION ------------------------------------------------------------

_DURATION = re.compile(
    r"(?P<sign>[+-])?P(?:(?P<weeks>\d{1,6})W|(?:(?P<days>\d{1,6})D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d{1,6})H)?(?:(?P<minutes>\d{1,6})M)?(?:(?P<seconds>\d{1,6})S)?)?)"
)
_MAX_OFFSET = timedelta(days=3660)


@dataclass(frozen=True)
class NominalOffset:
    """A signed RFC 5545 duration, split the way §3.3.6 reads it.

    Weeks and days are *nominal*: "-P1D" is the same wall time on the day before, even
    across a DST change. Hours, minutes and seconds are exact: "-PT24H" is 24 real hours.
    https://www.rfc-editor.org/rfc/rfc5545#section-3.3.6
    """

    days: int
    exact: timedelta

    def apply(self, instant: datetime, zone: ZoneInfo) -> datetime:
        shifted = instant
        if self.days:
            wall = utc_to_local(instant, zone) + timedelta(days=self.days)
            shifted = local_to_utc(wall, zone)
        return shifted + self.exact


def parse_offset(text: str) -> NominalOffset:
    """Read "-P1D", "-PT30M", "PT0S", "-P1DT2H"…; ValueError says what is wrong."""
    match = _DURATION.fullmatch(text)
    if match is None or not any(
        match.group(name) for name in ("weeks", "days", "hours", "minutes", "seconds")
    ):
        raise ValueError("expected an RFC 5545 duration such as '-P1D', '-PT30M' or 'PT0S'")
    amount = {name: int(value or 0) for name, value in match.groupdict().items() if name != "sign"}
    sign = -1 if match.group("sign") == "-" else 1
    days = amount["weeks"] * 7 + amount["days"]
    exact = timedelta(hours=amount["hours"], minutes=amount["minutes"], seconds=amount["seconds"])
    if timedelta(days=days) + exact > _MAX_OFFSET:
        raise ValueError("an offset of more than 3660 days (10 years) is refused")
    return NominalOffset(days=sign * days, exact=sign * exact)


# --- RFC 5545 §3.3.10 RECUR --------------------------------------------------------------

_FREQ_PERIOD = {
    "MINUTELY": timedelta(minutes=1),
    "HOURLY": timedelta(hours=1),
    "DAILY": timedelta(days=1),
    "WEEKLY": timedelta(weeks=1),
    "MONTHLY": timedelta(days=28),
    "YEARLY": timedelta(days=365),
}
# name -> (smallest, largest, may be negative)
_NUMBER_LISTS = {
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTH": (1, 12, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYSETPOS": (1, 366, True),
}
_KNOWN_PARTS = frozenset({"FREQ", "INTERVAL", "COUNT", "UNTIL", "BYDAY", "WKST", *_NUMBER_LISTS})
_RULE_CHARS = re.compile(r"[A-Z0-9=;,+\-]+")
_WEEKDAY = re.compile(r"(?P<ordinal>[+-]?\d{1,2})?(?:MO|TU|WE|TH|FR|SA|SU)")
_NUMBER = re.compile(r"[+-]?\d{1,7}")
_UNTIL = re.compile(r"\d{8}T\d{6}Z?")


def normalize_rrule(text: str) -> str:
    """The rule in canonical form (upper case, no "RRULE:"), or ValueError naming the part.

    Beyond what dateutil checks, this enforces RFC 5545 §3.3.10's MUST/MUST NOT rules and
    the engine's own limits: no DTSTART inside (it is ``start``), no BYSECOND/SECONDLY
    (reminders fire on whole minutes), no INTERVAL=0 (dateutil loops forever on it).
    https://www.rfc-editor.org/rfc/rfc5545#section-3.3.10
    """
    parts = _rule_parts(text)
    return ";".join(f"{name}={value}" for name, value in parts.items())


def _rule_parts(text: str) -> dict[str, str]:
    body = text.strip().upper().removeprefix("RRULE:")
    if "DTSTART" in body:
        raise ValueError("DTSTART is not part of the rule: send it as 'start'")
    if not _RULE_CHARS.fullmatch(body):
        raise ValueError("expected one RRULE such as 'FREQ=WEEKLY;BYDAY=MO,WE'")
    parts: dict[str, str] = {}
    for item in body.split(";"):
        name, _, value = item.partition("=")
        if not value:
            raise ValueError(f"{item!r} is not NAME=VALUE")
        if name in parts:
            raise ValueError(f"{name} is given twice")
        parts[name] = value
    _check_names(parts)
    for name, value in parts.items():
        _check_value(name, value)
    _check_combinations(parts)
    return parts


def _check_names(parts: dict[str, str]) -> None:
    for name in parts:
        if name == "BYSECOND":
            raise ValueError("BYSECOND is not supported: reminders fire on whole minutes")
        if name not in _KNOWN_PARTS:
            raise ValueError(f"unknown rule part {name}")
    if "FREQ" not in parts:
        raise ValueError("FREQ is required")
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValueError("COUNT and UNTIL cannot both be given (RFC 5545 §3.3.10)")


def _check_value(name: str, value: str) -> None:
    if name == "FREQ" and value not in _FREQ_PERIOD:
        raise ValueError(f"FREQ must be one of {', '.join(_FREQ_PERIOD)}")
    if name == "INTERVAL":
        _check_int(name, value, 1, 1000)
    elif name == "COUNT":
        _check_int(name, value, 1, 1_000_000)
    elif name == "UNTIL":
        _check_until(value)
    elif name == "WKST" and value not in ("MO", "TU", "WE", "TH", "FR", "SA", "SU"):
        raise ValueError("WKST must be a weekday such as MO")
    elif name == "BYDAY":
        for item in value.split(","):
            _check_weekday(item)
    elif name in _NUMBER_LISTS:
        smallest, largest, signed = _NUMBER_LISTS[name]
        for item in value.split(","):
            number = _check_int(name, item, -largest if signed else smallest, largest)
            if number == 0 and smallest > 0:
                raise ValueError(f"{name}: 0 is not allowed")


def _check_int(name: str, text: str, smallest: int, largest: int) -> int:
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"{name}: {text!r} is not a number")
    number = int(text)
    if not smallest <= number <= largest:
        raise ValueError(f"{name}: {number} is outside {smallest}..{largest}")
    return number


def _check_until(value: str) -> None:
    if not _UNTIL.fullmatch(value):
        raise ValueError(
            "UNTIL must be a date-time: 20261231T235959Z (UTC) or 20261231T235959 (local)"
        )
    try:
        datetime.strptime(value.removesuffix("Z"), "%Y%m%dT%H%M%S")
    except ValueError:
        raise ValueError(f"UNTIL: {value} is not a real date-time") from None


def _check_weekday(item: str) -> None:
    match = _WEEKDAY.fullmatch(item)
    if match is None:
        raise ValueError(f"BYDAY: {item!r} is not a weekday such as MO, 1MO or -1FR")
    ordinal = match.group("ordinal")
    if ordinal is not None and not 1 <= abs(int(ordinal)) <= 53:
        raise ValueError(f"BYDAY: {item} has an ordinal outside ±1..53")


def _check_combinations(parts: dict[str, str]) -> None:
    freq = parts["FREQ"]
    has_ordinal = any(_WEEKDAY_ORDINAL.match(item) for item in parts.get("BYDAY", "").split(","))
    if has_ordinal and (freq not in ("MONTHLY", "YEARLY") or "BYWEEKNO" in parts):
        raise ValueError(
            "BYDAY with an ordinal (1MO) needs FREQ=MONTHLY or YEARLY without BYWEEKNO"
        )
    if "BYMONTHDAY" in parts and freq == "WEEKLY":
        raise ValueError("BYMONTHDAY cannot be used with FREQ=WEEKLY")
    if "BYYEARDAY" in parts and freq in ("DAILY", "WEEKLY", "MONTHLY"):
        raise ValueError(f"BYYEARDAY cannot be used with FREQ={freq}")
    if "BYWEEKNO" in parts and freq != "YEARLY":
        raise ValueError("BYWEEKNO needs FREQ=YEARLY")
    if "BYSETPOS" in parts and not any(n.startswith("BY") and n != "BYSETPOS" for n in parts):
        raise ValueError("BYSETPOS needs another BYxxx part")


_WEEKDAY_ORDINAL = re.compile(r"[+-]?\d")


@dataclass(frozen=True)
class CompiledRule:
    """A checked rule ready to iterate: dateutil over wall time, COUNT and a UTC UNTIL kept
    aside because the walk enforces them itself (COUNT must survive re-anchoring, and
    dateutil refuses a UTC UNTIL with a naive DTSTART)."""

    text: str
    start: datetime
    freq: str
    interval: int
    count: int | None
    until_utc: datetime | None
    walls: Walls = field(compare=False)

    def nominal_period(self) -> timedelta:
        return _FREQ_PERIOD[self.freq] * self.interval

    def walls_from(self, dtstart: datetime) -> Walls:
        # replace() re-derives the BYxxx defaults (BYHOUR from DTSTART's hour, …) from the
        # new DTSTART; a real occurrence has exactly the values they were derived from.
        return self.walls.replace(dtstart=dtstart)


@lru_cache(maxsize=1024)
def compile_rule(text: str, start: datetime) -> CompiledRule:
    """Check and compile an RRULE for a naive local DTSTART; ValueError says what is wrong."""
    parts = _rule_parts(text)
    canonical = ";".join(f"{name}={value}" for name, value in parts.items())
    count = int(parts.pop("COUNT")) if "COUNT" in parts else None
    until_utc = None
    if parts.get("UNTIL", "").endswith("Z"):
        until_utc = datetime.strptime(parts.pop("UNTIL"), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    try:
        walls = rrulestr(";".join(f"{k}={v}" for k, v in parts.items()), dtstart=start)
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"the rule cannot be read: {exc}") from None
    if not isinstance(walls, rrule):  # pragma: no cover - one RRULE never makes a set
        raise ValueError("expected a single RRULE")
    return CompiledRule(
        text=canonical,
        start=start,
        freq=parts["FREQ"],
        interval=int(parts.get("INTERVAL", "1")),
        count=count,
        until_utc=until_utc,
        walls=walls,
    )


# --- next instants -----------------------------------------------------------------------

_EMPTY = RecurrenceState()
# Any wall time this far before `after` is an earlier instant: offsets within one zone
# differ by at most a day (Pacific/Apia skipped 2011-12-30 going from -10 to +14).
_SKIP_MARGIN = timedelta(days=2)
_TICK = timedelta(microseconds=1)


def next_fire_at(
    schedule: Schedule,
    *,
    zone: ZoneInfo,
    after: datetime,
    state: RecurrenceState | None = None,
    due_at: datetime | None = None,
) -> Planned | None:
    """The first instant strictly after ``after``, or None if the schedule has no more.

    ``zone`` is the recipient's zone, used when the schedule names none. ``state`` is what
    the rule stored after its last firing (None before the first). ``due_at`` is the
    task's due instant, needed by relative schedules (None → they never fire).
    """
    return next(_occurrences(schedule, zone, utc(after), state, due_at), None)


def due_between(
    schedule: Schedule,
    *,
    zone: ZoneInfo,
    after: datetime,
    until: datetime,
    state: RecurrenceState | None = None,
    due_at: datetime | None = None,
    limit: int = CATCH_UP_LIMIT,
) -> list[Planned]:
    """The instants in (after, until], ascending, at most ``limit`` of them."""
    until = utc(until)
    planned = _occurrences(schedule, zone, utc(after), state, due_at)
    return list(islice(_up_to(planned, until), limit))


def catch_up(
    schedule: Schedule,
    *,
    zone: ZoneInfo,
    planned_at: datetime,
    now: datetime,
    state: RecurrenceState | None = None,
    due_at: datetime | None = None,
    limit: int = CATCH_UP_LIMIT,
) -> CatchUp:
    """Everything the fire stage needs for a rule whose stored next_fire_at has come.

    ``planned_at`` is the stored next_fire_at (due itself if ≤ now), ``state`` the stored
    state. Every instant in [planned_at, now] is due; after a long downtime there may be
    many, which the fire stage coalesces into one occurrence at the latest. The walk goes
    on to the first instant after ``now`` so the rule leaves with a fresh next_fire_at.
    """
    now = utc(now)
    due: deque[datetime] = deque(maxlen=limit)
    due_count, latest_state = 0, state or _EMPTY
    for planned in _occurrences(schedule, zone, utc(planned_at) - _TICK, state, due_at):
        if planned.fire_at > now:
            return CatchUp(tuple(due), due_count, latest_state, planned)
        due.append(planned.fire_at)
        due_count, latest_state = due_count + 1, planned.state
    return CatchUp(tuple(due), due_count, latest_state, None)


def preview(
    schedule: Schedule,
    *,
    zone: ZoneInfo,
    after: datetime,
    count: int,
    due_at: datetime | None = None,
) -> list[datetime]:
    """The first ``count`` distinct instants strictly after ``after`` (``rules preview``)."""
    if not 0 <= count <= MAX_PREVIEW:
        raise InvalidInput(f"count must be between 0 and {MAX_PREVIEW}", field="count")
    planned = _occurrences(schedule, zone, utc(after), None, due_at)
    return [item.fire_at for item in islice(planned, count)]


def _up_to(planned: Iterable[Planned], until: datetime) -> Iterator[Planned]:
    for item in planned:
        if item.fire_at > until:
            return
        yield item


def _occurrences(
    schedule: Schedule,
    zone: ZoneInfo,
    after: datetime,
    state: RecurrenceState | None,
    due_at: datetime | None,
) -> Iterator[Planned]:
    effective = schedule.effective_zone(zone)
    if schedule.kind == "recurring":
        yield from _walk(schedule.compiled_rule(), effective, state, after)
        return
    instant = _single_instant(schedule, effective, due_at)
    if instant is not None and instant > after:
        yield Planned(instant, _EMPTY)


def _single_instant(
    schedule: OnceSchedule | RelativeSchedule, zone: ZoneInfo, due_at: datetime | None
) -> datetime | None:
    try:
        if schedule.kind == "once":
            if schedule.local is not None:
                return local_to_utc(schedule.local, zone)
            return schedule.at
        if due_at is None:
            return None
        due = utc(due_at)
        if schedule.on_due_day_at is not None:
            day = utc_to_local(due, zone).date()
            return local_to_utc(datetime.combine(day, schedule.on_due_day_at), zone)
        offset = schedule.parsed_offset()
        return None if offset is None else offset.apply(due, zone)
    except OverflowError:  # a due date at the end of the calendar: no instant to give
        return None


def _walk(
    rule: CompiledRule, zone: ZoneInfo, state: RecurrenceState | None, after: datetime
) -> Iterator[Planned]:
    """The rule's instants strictly after ``after``, each with the state after it fires."""
    if state is None or state.anchor_local is None:
        anchor, dtstart, remaining, floor = None, rule.start, rule.count, None
    else:
        anchor = dtstart = state.anchor_local
        remaining, floor = state.remaining_count, local_to_utc(state.anchor_local, zone)
    if rule.until_utc is not None and after >= rule.until_utc:
        return
    walls: Iterable[datetime] = rule.walls if anchor is None else rule.walls_from(anchor)
    if remaining is None:  # nothing to count, so dateutil may skip ahead on its own
        walls = _skip_ahead(rule, walls, dtstart, after, zone)
    for wall in walls:
        if anchor is not None and wall <= anchor:
            continue  # the anchor itself has fired already
        if remaining is not None:
            if remaining <= 0:
                return
            remaining -= 1
        try:
            instant = local_to_utc(wall, zone)
        except OverflowError:  # the end of the calendar
            return
        if rule.until_utc is not None and instant > rule.until_utc:
            return  # as dateutil does with an aware UNTIL: stop at the first instant past it
        if floor is not None and instant <= floor:
            continue
        floor = instant
        if instant > after:
            yield Planned(instant, RecurrenceState(wall, remaining))


def _skip_ahead(
    rule: CompiledRule,
    walls: Iterable[datetime],
    dtstart: datetime,
    after: datetime,
    zone: ZoneInfo,
) -> Iterable[datetime]:
    """Jump to the first wall time near ``after`` and re-anchor there.

    Used for the first planning of a rule whose DTSTART is long past (and after downtime):
    dateutil still walks from DTSTART, but without a conversion per instant. Instants
    before the horizon are all earlier than ``after``, so dropping them changes no answer:
    an instant is kept iff it is later than every instant before it.
    """
    try:
        horizon = utc_to_local(after, zone) - _SKIP_MARGIN
    except OverflowError:
        return walls
    if horizon <= dtstart:
        return walls
    first = rule.walls_from(dtstart).after(horizon, inc=True)
    return () if first is None else rule.walls_from(first)
