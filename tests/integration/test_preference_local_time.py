"""The preference page's time zone and quiet hours, in-process on both dialects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from scheduler.tables import Preference, Recipient
from scheduler.web.app import create_web_app

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
BOXES = {"shown": ["global:", "topic:task-reminder"], "on": ["global:", "topic:task-reminder"]}


@pytest.fixture
def app(make_app: Any) -> Any:
    app = make_app(T0)
    app.directory.upsert_recipient(
        "r1", {"email": "ada@example.com", "timezone": "Europe/Berlin",
               "quiet_hours": {"start": "22:00", "end": "07:00"}}, now=T0,
    )  # fmt: skip
    return app


def post(app: Any, data: dict[str, Any]) -> Any:
    token = app.signer.sign_preferences("r1", now=T0)
    client = TestClient(create_web_app(app), follow_redirects=False)
    return client.post(f"/preferences/{token}", data=data)


def stored(app: Any) -> tuple[str, str | None, str | None, int]:
    with app.sessions() as session:
        row = session.get(Recipient, "r1")
        count = session.scalar(select(func.count()).select_from(Preference))
        return row.timezone, row.quiet_start, row.quiet_end, int(count or 0)


def test_the_page_shows_the_zone_and_window_and_a_masked_address(app: Any) -> None:
    token = app.signer.sign_preferences("r1", now=T0)
    page = TestClient(create_web_app(app)).get(f"/preferences/{token}").text
    assert '<option value="Europe/Berlin" selected>' in page
    assert 'name="quiet_start" value="22:00"' in page and 'name="quiet_end" value="07:00"' in page
    assert "a•••@example.com" in page and "ada@example.com" not in page


def test_a_forged_zone_writes_nothing_even_with_box_changes(app: Any) -> None:
    data = {**BOXES, "on": ["global:"], "timezone": "Mars/Olympus",
            "quiet_start": "22:00", "quiet_end": "07:00"}  # fmt: skip
    answer = post(app, data)
    assert answer.status_code == 422 and "unknown time zone" in answer.text
    assert stored(app) == ("Europe/Berlin", "22:00", "07:00", 0)


def test_a_form_without_the_time_fields_leaves_them_alone(app: Any) -> None:
    answer = post(app, {**BOXES, "on": ["global:"]})
    assert answer.status_code == 200
    assert stored(app) == ("Europe/Berlin", "22:00", "07:00", 1)


def test_only_the_time_settings_change(app: Any) -> None:
    data = {**BOXES, "timezone": "Asia/Tokyo", "quiet_start": "", "quiet_end": ""}
    answer = post(app, data)
    assert answer.status_code == 200
    assert "Time zone: Europe/Berlin → Asia/Tokyo" in answer.text
    assert "Quiet hours: 22:00 to 07:00 → none" in answer.text
    assert stored(app) == ("Asia/Tokyo", None, None, 0)
    again = post(app, data)
    assert "Nothing changed" in again.text
