"""A recipient's local time settings as the preference page edits them: pure code.

Two settings live on the recipient row rather than in ``preference``: the IANA time zone
(used for quiet hours and for schedules that follow the recipient's zone) and the quiet
hours window, a pair of local wall times (DESIGN §6 step 7: mail due inside it is held
until the window ends, not dropped). The page offers pytz's curated ``common_timezones``
(``rules.timezones.common_timezones``), grouped by region for a ``<select>``; every value
is checked again here, since a form can post anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from scheduler.errors import InvalidInput
from scheduler.rules.timezones import common_timezones, resolve_zone

_HHMM: Final = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")  # inputs.HHMM, the API's rule
_SECONDS: Final = re.compile(r"^(\d\d:\d\d):00(\.0+)?$")  # some browsers post 22:00:00


@dataclass(frozen=True)
class LocalTime:
    """A valid time zone and either both quiet-hour ends (``HH:MM``) or neither."""

    timezone: str
    quiet_start: str | None = None
    quiet_end: str | None = None

    def __post_init__(self) -> None:
        resolve_zone(self.timezone, field="timezone")
        ends = (self.quiet_start, self.quiet_end)
        if (ends[0] is None) != (ends[1] is None):
            raise InvalidInput(
                "give both ends of quiet hours, or leave both empty for none",
                field="quiet_start" if ends[0] is None else "quiet_end",
            )
        for name, value in zip(("quiet_start", "quiet_end"), ends, strict=True):
            if value is not None and not _HHMM.match(value):
                raise InvalidInput("use a time such as 22:00", field=name)
        if ends[0] is not None and ends[0] == ends[1]:
            raise InvalidInput("quiet hours must end at another time than they start",
                               field="quiet_end")  # fmt: skip

    @classmethod
    def from_form(cls, timezone: str, start: str, end: str) -> LocalTime:
        """From the page's fields: blank means no quiet hours; ``22:00:00`` is read as 22:00."""
        return cls(timezone.strip(), _wall_time(start), _wall_time(end))

    @property
    def quiet_text(self) -> str:
        if self.quiet_start is None:
            return "none"
        return f"{self.quiet_start} to {self.quiet_end}"

    def changes_from(self, old: LocalTime) -> list[str]:
        """What a save changed, in words for the page's "what changed" list."""
        changes = []
        if self.timezone != old.timezone:
            changes.append(f"Time zone: {old.timezone} → {self.timezone}")
        if (self.quiet_start, self.quiet_end) != (old.quiet_start, old.quiet_end):
            changes.append(f"Quiet hours: {old.quiet_text} → {self.quiet_text}")
        return changes


def _wall_time(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    seconds = _SECONDS.match(text)
    return seconds.group(1) if seconds else text


@dataclass(frozen=True)
class ZoneGroup:
    """One ``<optgroup>``: a region and its zones, each as (value, label)."""

    region: str
    zones: list[tuple[str, str]]


def zone_groups(current: str) -> list[ZoneGroup]:
    """``common_timezones`` by region ("America/New_York" under America, shown as
    "America/New York"); zones without a region (UTC) come first. The recipient's current
    zone is always offered, even if it is not a common one, so saving never changes it."""
    names = common_timezones()
    if current not in names:
        names = [current, *names]
    groups: dict[str, list[tuple[str, str]]] = {}
    for name in names:
        region, _, place = name.partition("/")
        label = name.replace("_", " ")
        groups.setdefault(region if place else "", []).append((name, label))
    ordered = sorted(groups.items(), key=lambda item: (item[0] != "", item[0]))
    return [ZoneGroup(region or "Universal", zones) for region, zones in ordered]
