"""Validated input for the directory of recipients, workspaces and tasks (DESIGN §13).

The same models serve the HTTP API (FastAPI reads them for the OpenAPI document) and
Python callers. Unknown fields are refused; an instant without an offset is refused.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from scheduler.errors import InvalidInput

M = TypeVar("M", bound=BaseModel)

HHMM = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["22:00"])]
# Deliberately plain: the product backend owns address verification; we refuse what
# could never be a single mailbox or could smuggle a header (CR/LF, commas, spaces).
_EMAIL = re.compile(r"^[^@\s,;<>\"\x00-\x1f]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")
_LOCALE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")


def _email(value: str) -> str:
    value = value.strip()
    if not _EMAIL.match(value):
        raise ValueError("not a single email address")
    return value


def _timezone(value: str) -> str:
    from scheduler.rules.timezones import resolve_zone

    try:
        resolve_zone(value)
    except InvalidInput:
        raise ValueError(f"unknown time zone {value!r}; use an IANA name") from None
    return value


def _locale(value: str) -> str:
    if not _LOCALE.match(value):
        raise ValueError("not a locale tag such as 'en' or 'pt-BR'")
    return value


def _http_url(value: str) -> str:
    if not re.match(r"^https?://[^\s]+$", value):
        raise ValueError("must be an http or https URL")
    return value


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # e.g. 0001-01-01T00:00+01:00 is in year 0 in UTC, which datetime cannot hold
        raise ValueError("the instant is out of range") from None


# An instant with an offset, normalised to UTC (naive is refused: it names no instant).
Instant = Annotated[AwareDatetime, AfterValidator(_in_utc)]

Email = Annotated[str, Field(max_length=320, examples=["ada@example.com"]), AfterValidator(_email)]
TimeZoneName = Annotated[
    str, Field(max_length=64, examples=["Europe/Berlin"]), AfterValidator(_timezone)
]
Locale = Annotated[str, Field(max_length=16, examples=["en"]), AfterValidator(_locale)]
Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # PostgreSQL text cannot hold U+0000 (SQLite can): refuse it on the way in, for
        # every field and nested key, so both databases accept exactly the same input.
        if _has_nul(value):
            raise ValueError("must not contain the NUL character (U+0000)")
        return value


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_has_nul(v) for v in value)
    return False


class QuietHoursIn(Strict):
    start: HHMM
    end: HHMM


class RecipientIn(Strict):
    email: Email
    timezone: TimeZoneName = "UTC"
    locale: Locale = "en"
    name: Annotated[str | None, Field(max_length=200)] = None
    quiet_hours: QuietHoursIn | None = None


class WorkspaceIn(Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]


class TaskIn(Strict):
    workspace_id: Id
    title: Annotated[str, Field(min_length=1, max_length=500)]
    url: Annotated[
        str | None, Field(max_length=2000), AfterValidator(lambda v: v and _http_url(v))
    ] = None
    due_at: Instant | None = None
    status: Literal["open", "done", "deleted"] = "open"


def validate(model: type[M], data: object, *, prefix: str = "") -> M:
    """``model`` from ``data``, or ``InvalidInput`` naming the first offending field."""
    if isinstance(data, model):
        return data
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_input(exc, prefix=prefix) from None


def invalid_input(exc: ValidationError, *, prefix: str = "") -> InvalidInput:
    first = exc.errors()[0]
    field = ".".join(str(p) for p in (prefix, *first["loc"]) if p != "")
    message = str(first["msg"]).removeprefix("Value error, ")
    return InvalidInput(message, field=field or None)


def parse_instant(value: str, *, field: str) -> datetime:
    """An ISO 8601 instant; one without an offset is refused (it names no instant)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"not an ISO 8601 instant: {value!r}", field=field) from None
    if parsed.tzinfo is None:
        raise InvalidInput("an instant without an offset is refused", field=field)
    return parsed
