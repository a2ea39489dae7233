"""``reminders rules preview``: RFC 5545 answers, the JSON shape, and one-line errors.

The command needs no database, so it runs in-process through ``scheduler.cli.main`` (the
real entry point, with its error translation); one case runs the installed module as a
subprocess to pin the exit code and stderr a shell sees.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from scheduler.cli import main

NY_DAILY_0230 = {
    "kind": "recurring",
    "rrule": "FREQ=DAILY",
    "start": "2026-03-07T02:30",
    "timezone": "America/New_York",
}


def preview(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    schedule: dict[str, Any] | str,
    *args: str,
) -> tuple[int, Any, str]:
    text = schedule if isinstance(schedule, str) else json.dumps(schedule)
    monkeypatch.setattr(sys, "argv", ["reminders", "rules", "preview", "--schedule", text, *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if code == 0 else out), err


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.delenv("REMINDERS_MIN_RULE_INTERVAL_SECONDS", raising=False)

    def invoke(schedule: dict[str, Any] | str, *args: str) -> tuple[int, Any, str]:
        return preview(capsys, monkeypatch, schedule, *args)

    return invoke


def test_the_spring_gap_instance_is_read_with_the_offset_before_it(run: Any) -> None:
    code, items, err = run(NY_DAILY_0230, "--after", "2026-03-06T00:00:00Z", "--count", "3")

    assert (code, err) == (0, "")
    assert items == [
        {"utc": "2026-03-07T07:30:00Z", "local": "2026-03-07T02:30:00-05:00"},
        # 02:30 does not exist on 03-08: read with EST it is 07:30Z, 03:30 EDT.
        {"utc": "2026-03-08T07:30:00Z", "local": "2026-03-08T03:30:00-04:00"},
        {"utc": "2026-03-09T06:30:00Z", "local": "2026-03-09T02:30:00-04:00"},
    ]


def test_a_repeated_wall_time_is_the_first_one(run: Any) -> None:
    schedule = NY_DAILY_0230 | {"start": "2026-10-31T01:30"}

    code, items, _ = run(schedule, "--after", "2026-10-31T12:00:00Z", "--count", "2")

    assert code == 0
    assert items == [
        {"utc": "2026-11-01T05:30:00Z", "local": "2026-11-01T01:30:00-04:00"},  # EDT, first
        {"utc": "2026-11-02T06:30:00Z", "local": "2026-11-02T01:30:00-05:00"},
    ]


@pytest.mark.parametrize(
    ("zone", "start", "after", "expected_utc"),
    [
        (
            "Europe/Berlin",
            "2026-03-28T09:00",
            "2026-03-27T00:00:00Z",
            ["2026-03-28T08:00:00Z", "2026-03-29T07:00:00Z"],
        ),
        (
            "Australia/Lord_Howe",  # 30-minute fall back on 2026-04-05
            "2026-04-04T09:00",
            "2026-04-01T00:00:00Z",
            ["2026-04-03T22:00:00Z", "2026-04-04T22:30:00Z"],
        ),
        (
            "Asia/Kolkata",
            "2026-03-07T09:00",
            "2026-03-01T00:00:00Z",
            ["2026-03-07T03:30:00Z", "2026-03-08T03:30:00Z"],
        ),
        (
            "Pacific/Apia",  # 2011-12-30 never happened in Samoa
            "2011-12-29T09:00",
            "2011-12-28T00:00:00Z",
            ["2011-12-29T19:00:00Z", "2011-12-30T19:00:00Z", "2011-12-31T19:00:00Z"],
        ),
    ],
)
def test_nine_oclock_stays_nine_oclock(
    run: Any, zone: str, start: str, after: str, expected_utc: list[str]
) -> None:
    schedule = {"kind": "recurring", "rrule": "FREQ=DAILY", "start": start, "timezone": zone}

    code, items, _ = run(schedule, "--after", after, "--count", str(len(expected_utc)))

    assert code == 0
    assert [item["utc"] for item in items] == expected_utc
    assert all(item["local"][11:19] == "09:00:00" for item in items)
    if zone == "Pacific/Apia":
        days = [item["local"][:10] for item in items]
        assert days == ["2011-12-29", "2011-12-31", "2012-01-01"]


def test_instants_are_strictly_after_after(run: Any) -> None:
    code, items, _ = run(NY_DAILY_0230, "--after", "2026-03-08T07:30:00Z", "--count", "1")

    assert code == 0
    assert items == [{"utc": "2026-03-09T06:30:00Z", "local": "2026-03-09T02:30:00-04:00"}]


def test_the_json_shape_and_the_count(run: Any) -> None:
    code, items, _ = run(NY_DAILY_0230, "--after", "2026-03-06T00:00:00Z", "--count", "7")

    assert code == 0
    assert isinstance(items, list) and len(items) == 7
    assert all(set(item) == {"utc", "local"} for item in items)
    assert all(item["utc"].endswith("Z") for item in items)
    assert len({item["utc"] for item in items}) == 7


def test_the_timezone_option_applies_only_when_the_schedule_has_none(run: Any) -> None:
    floating = {"kind": "recurring", "rrule": "FREQ=WEEKLY", "start": "2026-03-02T09:00"}

    _, tokyo, _ = run(floating, "--after", "2026-03-01T00:00:00Z", "--timezone", "Asia/Tokyo")
    _, own, _ = run(NY_DAILY_0230, "--after", "2026-03-06T00:00:00Z", "--timezone", "Asia/Tokyo")

    assert tokyo[0] == {"utc": "2026-03-02T00:00:00Z", "local": "2026-03-02T09:00:00+09:00"}
    assert own[0]["local"].endswith("-05:00")


def test_a_relative_schedule_needs_the_due_instant(run: Any) -> None:
    schedule = {"kind": "relative", "offset": "-P1D", "timezone": "America/New_York"}

    code, items, _ = run(
        schedule, "--after", "2026-03-01T00:00:00Z", "--due", "2026-03-08T13:00:00Z"
    )

    # -P1D is nominal (RFC 5545 §3.3.6): from 09:00 EDT on the DST day, the day before
    # at 09:00 EST, which is 25 hours earlier, not 24.
    assert code == 0
    assert items == [{"utc": "2026-03-07T14:00:00Z", "local": "2026-03-07T09:00:00-05:00"}]


@pytest.mark.parametrize(
    ("schedule", "args", "field"),
    [
        ("{not json", (), "--schedule"),
        ("[1, 2]", (), "--schedule"),
        (NY_DAILY_0230 | {"timezone": "America/Gotham"}, (), "schedule.timezone"),
        (NY_DAILY_0230 | {"rrule": "FREQ=DAILY;BYDAY=XX"}, (), "schedule.rrule"),
        (NY_DAILY_0230 | {"rrule": "FREQ=MINUTELY"}, (), "schedule.rrule"),
        (NY_DAILY_0230 | {"rrule": "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30"}, (), "schedule.rrule"),
        ({"kind": "once", "at": "2026-03-08T09:00"}, (), "schedule.at"),
        ({"kind": "weekly"}, (), "schedule.kind"),
        (NY_DAILY_0230, ("--after", "2026-03-06T00:00"), "--after"),
        (
            {"kind": "recurring", "rrule": "FREQ=DAILY", "start": "2026-03-07T02:30"},
            ("--timezone", "Nowhere"),
            "--timezone",
        ),
    ],
    ids=[
        "not json",
        "not an object",
        "unknown zone",
        "malformed rrule",
        "too frequent",
        "never fires",
        "naive instant",
        "unknown kind",
        "naive after",
        "unknown timezone option",
    ],
)
def test_a_bad_schedule_is_one_stderr_line_and_exit_2(
    run: Any, schedule: dict[str, Any] | str, args: tuple[str, ...], field: str
) -> None:
    code, out, err = run(schedule, *args)

    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {field}: "), lines[0]


def test_the_installed_command_exits_2_on_a_bad_schedule() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "scheduler",
            "rules",
            "preview",
            "--schedule",
            json.dumps(NY_DAILY_0230 | {"rrule": "FREQ=SOMETIMES"}),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )

    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: schedule.rrule: FREQ must be one of")
