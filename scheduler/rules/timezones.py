"""Time zones: IANA names in, ``zoneinfo`` for every computation, UTC out.

The engine does all arithmetic with :mod:`zoneinfo`. pytz is accepted from Python callers
and converted here, at the boundary, because an rrule built on a pytz datetime freezes the
UTC offset and fires an hour off after a DST change (dateutil #102, closed wontfix:
https://github.com/dateutil/dateutil/issues/102). pytz's only other job is to supply its
curated ``common_timezones`` list for the preference page.
"""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

import pytz

from scheduler.errors import InvalidInput

# ``available_timezones()`` also lists whatever the host's zoneinfo directory holds.
# ``localtime`` is the host's own setting (a different zone on every machine) and
# ``posixrules`` is a tzcode implementation detail; neither is an IANA zone a user means.
_NOT_IANA_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1)
def _known_zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_IANA_ZONES


def resolve_zone(value: str | tzinfo, *, field: str = "timezone") -> ZoneInfo:
    """Turn an IANA name (or a pytz/zoneinfo object from a Python caller) into a ZoneInfo.

    Anything else (an unknown name, a fixed offset, a dateutil zone) is refused with
    :class:`InvalidInput` naming ``field``: a fixed offset has no DST rules, so a
    "09:00 local" reminder would drift by an hour twice a year.
    """
    name = _zone_name(value)
    if name is None or name not in _known_zone_names():
        shown = value if isinstance(value, str) else type(value).__name__
        raise InvalidInput(
            f"unknown time zone {shown!r}: use an IANA name such as 'Europe/Berlin'", field=field
        )
    return ZoneInfo(name)


def _zone_name(value: str | tzinfo) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, ZoneInfo):
        return value.key  # None for ZoneInfo.from_file(): no name, no way to store it
    if value is UTC:
        return "UTC"
    # pytz zones (and pytz.utc) carry their IANA name in ``.zone``; we use only the name.
    if isinstance(value, pytz.BaseTzInfo) and isinstance(value.zone, str):
        return value.zone
    return None


def local_to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time in ``zone``, by RFC 5545 §3.3.5.

    https://www.rfc-editor.org/rfc/rfc5545#section-3.3.5 :

    - a wall time that occurs twice (the fall-back hour) means its **first** occurrence;
    - a wall time that does not exist (the spring-forward gap) is read with the UTC offset
      from **before** the gap, so it lands as far after the gap as it was inside it:
      02:30 on a 02:00→03:00 day fires at 03:30 local.

    PEP 495's ``fold=0`` gives exactly both readings (the earlier offset for a repeated
    time, the pre-transition offset for a missing one), so this is one line; its value is
    in the name and in the tests that pin the behaviour.
    """
    if local.tzinfo is not None:
        raise ValueError("local_to_utc needs a naive wall-clock time")
    return local.replace(tzinfo=zone, fold=0).astimezone(UTC)


def utc_to_local(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive wall-clock time ``zone`` shows at an aware instant."""
    if instant.tzinfo is None:
        raise ValueError("utc_to_local needs an aware datetime")
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def common_timezones() -> list[str]:
    """pytz's curated list of zones a person would pick (for the preference page).

    Filtered to names zoneinfo knows, so every choice offered resolves.
    """
    known = _known_zone_names()
    return [name for name in pytz.common_timezones if name in known]
