"""The preference page's time zone and quiet hours (``preferences.local_time``), pure."""

from __future__ import annotations

import pytest

from scheduler.errors import InvalidInput
from scheduler.preferences.local_time import LocalTime, zone_groups


def test_a_zone_and_a_window() -> None:
    settings = LocalTime.from_form(" Europe/Berlin ", "22:00", "07:00")
    assert settings == LocalTime("Europe/Berlin", "22:00", "07:00")
    assert settings.quiet_text == "22:00 to 07:00"


def test_blank_ends_mean_no_quiet_hours() -> None:
    settings = LocalTime.from_form("UTC", "", "  ")
    assert (settings.quiet_start, settings.quiet_end, settings.quiet_text) == (None, None, "none")


def test_times_with_seconds_are_read_as_minutes() -> None:
    assert LocalTime.from_form("UTC", "22:00:00", "06:30:00.000").quiet_end == "06:30"


@pytest.mark.parametrize(
    ("zone", "start", "end", "field"),
    [
        ("Mars/Olympus", "", "", "timezone"),
        ("+02:00", "", "", "timezone"),
        ("UTC", "22:00", "", "quiet_end"),
        ("UTC", "", "07:00", "quiet_start"),
        ("UTC", "25:00", "07:00", "quiet_start"),
        ("UTC", "22:00", "7pm", "quiet_end"),
        ("UTC", "22:00", "22:00", "quiet_end"),
    ],
)
def test_refused_settings_name_the_field(zone: str, start: str, end: str, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        LocalTime.from_form(zone, start, end)
    assert refused.value.field == field


def test_what_changed_in_words() -> None:
    old = LocalTime("Europe/Berlin")
    assert LocalTime("Europe/Berlin").changes_from(old) == []
    assert LocalTime("America/New_York", "22:00", "07:30").changes_from(old) == [
        "Time zone: Europe/Berlin → America/New_York",
        "Quiet hours: none → 22:00 to 07:30",
    ]
    assert old.changes_from(LocalTime("Europe/Berlin", "21:00", "06:00")) == [
        "Quiet hours: 21:00 to 06:00 → none"
    ]


def test_zone_groups_offer_common_zones_by_region_with_utc_first() -> None:
    groups = zone_groups("Europe/Berlin")
    assert groups[0].region == "Universal" and ("UTC", "UTC") in groups[0].zones
    america = next(g for g in groups if g.region == "America")
    assert ("America/New_York", "America/New York") in america.zones
    regions = [g.region for g in groups[1:]]
    assert regions == sorted(regions)
    offered = {value for group in groups for value, _ in group.zones}
    assert "Europe/Berlin" in offered and "US/Pacific-New" not in offered


def test_an_uncommon_current_zone_is_still_offered() -> None:
    offered = {value for group in zone_groups("Etc/GMT+5") for value, _ in group.zones}
    assert "Etc/GMT+5" in offered
