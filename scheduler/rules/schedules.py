"""Schedules as users send them (DESIGN §13), validated on the way in.

Three kinds, discriminated on ``kind``::

    {"kind": "once", "at": "2026-03-08T09:00:00Z"}
    {"kind": "once", "local": "2026-03-08T09:00", "timezone": "Europe/Berlin"}
    {"kind": "relative", "offset": "-PT30M"}
    {"kind": "relative", "on_due_day_at": "09:00"}
    {"kind": "recurring", "rrule": "FREQ=WEEKLY;BYDAY=MO,WE", "start": "2026-03-02T09:00",
     "timezone": "America/New_York"}

A missing ``timezone`` means the recipient's. Parsing checks the shape of each field
(:func:`parse_schedule`); :func:`validate_schedule` checks what needs a clock and a zone
(the rule can still fire, it is not too frequent). Both raise :class:`InvalidInput` whose
``field`` is a dotted path such as ``schedule.rrule``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta, tzinfo
from itertools import islice, pairwise
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from scheduler.errors import InvalidInput
from scheduler.rules import recurrence
from scheduler.rules.recurrence import CompiledRule, compile_rule, normalize_rrule
from scheduler.rules.timezones import resolve_zone

DEFAULT_MIN_INTERVAL = timedelta(minutes=5)

# --- field types -------------------------------------------------------------------------

_WALL_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")
_TIME_OF_DAY = re.compile(r"([01]\d|2[0-3]):[0-5]\d")
# Wall times outside this range are typos; the upper bound also keeps the 400-year
# probe in validate_schedule and every later computation clear of datetime.max.
_WALL_YEARS = range(1900, 3000)


def _parse_wall_time(value: object) -> datetime:
    if isinstance(value, datetime) and value.tzinfo is None:
        parsed = value  # a Python caller's naive datetime
    elif isinstance(value, str) and _WALL_TIME.fullmatch(value):
        parsed = datetime.fromisoformat(value)  # ValueError names a bad month/day/hour
    else:
        raise ValueError(
            "expected a local wall time 'YYYY-MM-DDTHH:MM[:SS]' without an offset "
            "(an instant with an offset goes in 'at')"
        )
    if parsed.year not in _WALL_YEARS:
        raise ValueError(
            f"year {parsed.year} is outside {_WALL_YEARS.start}..{_WALL_YEARS.stop - 1}"
        )
    return parsed


def _format_wall_time(value: datetime) -> str:
    return value.isoformat(timespec="minutes" if value.second == 0 else "seconds")


def _parse_time_of_day(value: object) -> time:
    if isinstance(value, time) and value.tzinfo is None:
        return value.replace(second=0, microsecond=0)
    if isinstance(value, str) and _TIME_OF_DAY.fullmatch(value):
        return time.fromisoformat(value)
    raise ValueError("expected a local time of day 'HH:MM' (00:00..23:59)")


def _require_iso_text(value: object) -> object:
    # pydantic would read a bare number as Unix seconds; an API that takes ISO 8601 only
    # should say so rather than guess.
    if isinstance(value, str | datetime):
        return value
    raise ValueError("expected an ISO 8601 instant such as '2026-03-08T09:00:00Z'")


def _require_offset(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("an instant without an offset is refused")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00 lies in year 0 in UTC
        raise ValueError("the instant is out of range") from None


def _zone_name(value: object) -> object:
    if isinstance(value, tzinfo):  # pytz or zoneinfo from a Python caller
        return resolve_zone(value).key
    return value


def _known_zone(name: str) -> str:
    try:
        resolve_zone(name)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None
    return name


def _offset_text(value: str) -> str:
    text = value.strip().upper()
    recurrence.parse_offset(text)  # ValueError says what is wrong
    return text


Instant = Annotated[datetime, BeforeValidator(_require_iso_text), AfterValidator(_require_offset)]
WallTime = Annotated[
    datetime,
    PlainValidator(_parse_wall_time),
    PlainSerializer(_format_wall_time, return_type=str),
    WithJsonSchema(
        {"type": "string", "pattern": _WALL_TIME.pattern, "example": "2026-03-02T09:00"}
    ),
]
TimeOfDay = Annotated[
    time,
    PlainValidator(_parse_time_of_day),
    PlainSerializer(lambda value: value.strftime("%H:%M"), return_type=str),
    WithJsonSchema({"type": "string", "pattern": _TIME_OF_DAY.pattern, "example": "09:00"}),
]
ZoneName = Annotated[str, BeforeValidator(_zone_name), AfterValidator(_known_zone)]
OffsetText = Annotated[str, AfterValidator(_offset_text)]
RRuleText = Annotated[str, AfterValidator(normalize_rrule)]


def _field_error(field: str, message: str) -> PydanticCustomError:
    """A model-level error that still names a field (pydantic would report the model)."""
    return PydanticCustomError("schedule_field", "{message}", {"field": field, "message": message})


def _effective_zone(name: str | None, default: ZoneInfo) -> ZoneInfo:
    if name is None:
        return default
    return resolve_zone(name, field="schedule.timezone")


_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True)

# --- the three kinds ---------------------------------------------------------------------


class OnceSchedule(BaseModel):
    """One reminder: an instant (``at``), or a wall time (``local``) in a time zone."""

    model_config = _MODEL_CONFIG

    kind: Literal["once"] = "once"
    at: Instant | None = None
    local: WallTime | None = None
    timezone: ZoneName | None = None

    @model_validator(mode="after")
    def _one_of_at_or_local(self) -> OnceSchedule:
        if self.at is not None and self.local is not None:
            raise _field_error("local", "give either 'at' or 'local', not both")
        if self.at is None and self.local is None:
            raise _field_error(
                "at", "give 'at' (an instant with an offset) or 'local' (a wall time)"
            )
        if self.at is not None and self.timezone is not None:
            raise _field_error(
                "timezone", "'at' carries its own offset; 'timezone' goes with 'local'"
            )
        return self

    def effective_zone(self, default: ZoneInfo) -> ZoneInfo:
        return _effective_zone(self.timezone, default)


class RelativeSchedule(BaseModel):
    """Relative to the task's due instant: an RFC 5545 duration, or a time on the due day."""

    model_config = _MODEL_CONFIG

    kind: Literal["relative"] = "relative"
    offset: OffsetText | None = None
    on_due_day_at: TimeOfDay | None = None
    timezone: ZoneName | None = None

    @model_validator(mode="after")
    def _one_of_offset_or_time(self) -> RelativeSchedule:
        if self.offset is not None and self.on_due_day_at is not None:
            raise _field_error("on_due_day_at", "give either 'offset' or 'on_due_day_at', not both")
        if self.offset is None and self.on_due_day_at is None:
            raise _field_error(
                "offset", "give 'offset' (e.g. '-PT30M') or 'on_due_day_at' ('09:00')"
            )
        return self

    def effective_zone(self, default: ZoneInfo) -> ZoneInfo:
        return _effective_zone(self.timezone, default)

    def parsed_offset(self) -> recurrence.NominalOffset | None:
        return None if self.offset is None else recurrence.parse_offset(self.offset)


class RecurringSchedule(BaseModel):
    """An RFC 5545 RRULE on a local DTSTART (``start``) in an IANA time zone."""

    model_config = _MODEL_CONFIG

    kind: Literal["recurring"] = "recurring"
    rrule: RRuleText
    start: WallTime
    timezone: ZoneName | None = None

    @model_validator(mode="after")
    def _dateutil_reads_it(self) -> RecurringSchedule:
        try:
            compile_rule(self.rrule, self.start)
        except ValueError as exc:
            raise _field_error("rrule", str(exc)) from None
        return self

    def effective_zone(self, default: ZoneInfo) -> ZoneInfo:
        return _effective_zone(self.timezone, default)

    def compiled_rule(self) -> CompiledRule:
        return compile_rule(self.rrule, self.start)


Schedule = OnceSchedule | RelativeSchedule | RecurringSchedule
# For request models that embed a schedule (the web layer): pydantic picks the class by kind.
ScheduleField = Annotated[Schedule, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[Schedule] = TypeAdapter(ScheduleField)
_KINDS = frozenset({"once", "relative", "recurring"})

# --- parsing and storage -----------------------------------------------------------------


def parse_schedule(data: Mapping[str, Any]) -> Schedule:
    """Read a schedule payload; a bad one raises InvalidInput naming ``schedule.<field>``."""
    try:
        return _ADAPTER.validate_python(dict(data) if isinstance(data, Mapping) else data)
    except ValidationError as exc:
        raise invalid_input_from(exc, prefix="schedule") from None


def schedule_to_json(schedule: Schedule) -> dict[str, Any]:
    """The JSON object to store; :func:`parse_schedule` reads it back to an equal schedule."""
    result: dict[str, Any] = _ADAPTER.dump_python(schedule, mode="json", exclude_none=True)
    return result


def invalid_input_from(exc: ValidationError, *, prefix: str | None = None) -> InvalidInput:
    """The first pydantic error as InvalidInput; ``field`` drops the union's kind tag."""
    errors = exc.errors()
    first = errors[0]
    message = _error_message(first)
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more)"
    return InvalidInput(message, field=error_field(first, prefix=prefix))


def error_field(error: ErrorDetails, *, prefix: str | None = None) -> str:
    """Dotted path of a pydantic error: ``("once", "at")`` under "schedule" → ``schedule.at``."""
    parts = [str(part) for part in error["loc"] if part not in _KINDS]
    ctx = error.get("ctx") or {}
    if error["type"] in {"union_tag_invalid", "union_tag_not_found"}:
        parts.append("kind")
    elif "field" in ctx:
        parts.append(str(ctx["field"]))
    if prefix:
        parts.insert(0, prefix)
    return ".".join(parts) or "schedule"


def _error_message(error: ErrorDetails) -> str:
    if error["type"] in {"union_tag_invalid", "union_tag_not_found"}:
        return "kind must be one of 'once', 'relative', 'recurring'"
    return error["msg"].removeprefix("Value error, ")


# --- validation that needs a clock and a zone --------------------------------------------


def validate_schedule(
    schedule: Schedule,
    *,
    zone: ZoneInfo,
    now: datetime,
    min_interval: timedelta = DEFAULT_MIN_INTERVAL,
) -> None:
    """Refuse a schedule that can never fire, or fires more often than ``min_interval``.

    ``zone`` is the recipient's time zone, used when the schedule names none. A relative
    schedule is checked for shape only: whether it fires depends on the task's due date.
    """
    effective = schedule.effective_zone(zone)
    if isinstance(schedule, OnceSchedule):
        _validate_once(schedule, effective, now)
    elif isinstance(schedule, RecurringSchedule):
        _validate_recurring(schedule, effective, now, min_interval)


def _validate_once(schedule: OnceSchedule, zone: ZoneInfo, now: datetime) -> None:
    if recurrence.next_fire_at(schedule, zone=zone, after=now) is None:
        field = "schedule.at" if schedule.at is not None else "schedule.local"
        raise InvalidInput(f"the time is not in the future (now is {now.isoformat()})", field=field)


def _validate_recurring(
    schedule: RecurringSchedule, zone: ZoneInfo, now: datetime, min_interval: timedelta
) -> None:
    rule = schedule.compiled_rule()
    period = rule.nominal_period()
    if period < min_interval:
        raise InvalidInput(
            f"FREQ={rule.freq};INTERVAL={rule.interval} repeats every {_span(period)}; "
            f"the minimum interval is {_span(min_interval)}",
            field="schedule.rrule",
        )
    walls = list(islice(_probe(rule, schedule.start), 50))
    if not walls:
        raise InvalidInput("the rule never produces an occurrence", field="schedule.rrule")
    for earlier, later in pairwise(walls):
        if later - earlier < min_interval:
            raise InvalidInput(
                f"two occurrences are only {_span(later - earlier)} apart "
                f"({earlier:%H:%M} and {later:%H:%M}); the minimum interval is "
                f"{_span(min_interval)}",
                field="schedule.rrule",
            )
    if recurrence.next_fire_at(schedule, zone=zone, after=now) is None:
        raise InvalidInput(
            f"COUNT/UNTIL leave no occurrence after now ({now.isoformat()})",
            field="schedule.rrule",
        )


# The Gregorian calendar repeats exactly every 400 years (146,097 days, a whole number of
# weeks), and an rrule's INTERVAL phase is counted from DTSTART, so the rule started 400·k
# years later yields the same wall times shifted by 400·k years. Probing near year 9999
# bounds the work: dateutil walks to datetime.MAXYEAR looking for a match that an
# impossible rule (FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30) never gives, which takes seconds
# from a present-day DTSTART and is a cheap way to stall the API.
_PROBE_YEARS = 50  # an occurrence must come within this many years of the start


def _probe(rule: CompiledRule, start: datetime) -> recurrence.Walls:
    cycles = (datetime.max.year - _PROBE_YEARS - start.year) // 400
    shifted = start.replace(year=start.year + 400 * cycles)
    return rule.walls.replace(dtstart=shifted, until=None)


def _span(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    if seconds % 86400 == 0:
        return _plural(seconds // 86400, "day")
    if seconds % 3600 == 0:
        return _plural(seconds // 3600, "hour")
    if seconds % 60 == 0:
        return _plural(seconds // 60, "minute")
    return _plural(seconds, "second")


def _plural(amount: int, unit: str) -> str:
    return f"{amount} {unit}" if amount == 1 else f"{amount} {unit}s"
