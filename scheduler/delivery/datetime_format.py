"""Format an instant for a recipient's locale: a small table, no Babel (pure).

Only the date/time *format* is localised (order, separators, 12/24-hour clock, as CLDR
has them for each locale's medium style: https://cldr.unicode.org/); month names are
numeric except in English. Unknown locales fall back to their language, then to ``en``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

DEFAULT_LOCALE: Final = "en"

_MONTHS_EN: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # fmt: skip

# Placeholders: d/dd day, M/MM month number, mon English month, yyyy year,
# H/HH 24-hour, h 12-hour, mm minute, ampm AM/PM, tz the zone's abbreviation.
FORMATS: Final[dict[str, str]] = {
    "en": "{mon} {d}, {yyyy}, {h}:{mm} {ampm} {tz}",
    "en-GB": "{d} {mon} {yyyy}, {HH}:{mm} {tz}",
    "de": "{dd}.{MM}.{yyyy}, {HH}:{mm} {tz}",
    "fr": "{dd}/{MM}/{yyyy} {HH}:{mm} {tz}",
    "es": "{dd}/{MM}/{yyyy}, {H}:{mm} {tz}",
    "it": "{dd}/{MM}/{yyyy}, {HH}:{mm} {tz}",
    "nl": "{d}-{M}-{yyyy} {HH}:{mm} {tz}",
    "pt": "{dd}/{MM}/{yyyy} {HH}:{mm} {tz}",
    "pt-BR": "{dd}/{MM}/{yyyy} {HH}:{mm} {tz}",
    "ja": "{yyyy}/{MM}/{dd} {H}:{mm} {tz}",
}


def resolve_locale(tag: str) -> str:
    """Map a BCP 47-ish tag (``pt_br``, ``de-AT``, ``en-GB``) to a key of ``FORMATS``."""
    parts = tag.replace("_", "-").split("-")
    language = parts[0].lower()
    if len(parts) > 1:
        regional = f"{language}-{parts[1].upper()}"
        if regional in FORMATS:
            return regional
    return language if language in FORMATS else DEFAULT_LOCALE


def format_datetime(local: datetime, locale: str) -> str:
    """Format an aware datetime (already in the recipient's zone) for ``locale``."""
    if local.tzinfo is None:
        raise ValueError("format_datetime needs an aware datetime")
    pattern = FORMATS.get(locale, FORMATS[DEFAULT_LOCALE])
    return pattern.format(
        d=local.day,
        dd=f"{local.day:02d}",
        M=local.month,
        MM=f"{local.month:02d}",
        mon=_MONTHS_EN[local.month - 1],
        yyyy=f"{local.year:04d}",
        H=local.hour,
        HH=f"{local.hour:02d}",
        h=local.hour % 12 or 12,
        mm=f"{local.minute:02d}",
        ampm="AM" if local.hour < 12 else "PM",
        tz=local.tzname() or "UTC",
    )
