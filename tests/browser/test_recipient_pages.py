"""The recipient pages in Chromium, reached from a reminder the pipeline really sent.

A daily rule fires, the outbox sender writes the message as an .eml; the test reads its
``List-Unsubscribe`` link and the preference link in its body, points them at the live
server, and clicks through as a recipient would, checking the database after each step.
"""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from scheduler.tables import Preference, Recipient
from tests.browser.conftest import Live

pytestmark = pytest.mark.browser

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
FIRST = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=60)


@dataclass
class Mailed:
    live: Live
    unsubscribe_url: str  # from List-Unsubscribe, re-pointed at the live server
    preferences_url: str  # from the message body, likewise

    def preferences(self) -> set[tuple[str, str, bool, str]]:
        with self.live.app.sessions() as session:
            rows = session.scalars(select(Preference))
            return {(r.scope, r.scope_id, r.email_enabled, r.source) for r in rows}

    def recipient(self) -> Recipient:
        with self.live.app.sessions() as session:
            row = session.get(Recipient, "r1")
            assert row is not None
            return row


def _on_server(url: str, server: str) -> str:
    parts = urlsplit(url)
    return f"{server}{parts.path}"


@pytest.fixture
def mailed(live: Callable[..., Live], tmp_path: Any) -> Mailed:
    """One reminder sent to the outbox; the links it carries, served over HTTP."""
    server = live(T0)
    app = server.app
    app.directory.upsert_recipient(
        "r1", {"email": "ada@example.com", "name": "Ada", "timezone": "Europe/Berlin"}, now=T0
    )
    app.directory.upsert_workspace("w1", {"name": "Garden club"}, now=T0)
    for task_id, title in (("t1", "Water the plants"), ("t2", "Order seeds for spring")):
        app.directory.upsert_task(task_id, {"workspace_id": "w1", "title": title}, now=T0)
    daily = {"kind": "recurring", "rrule": "FREQ=DAILY", "start": "2026-03-02T09:00",
             "timezone": "UTC"}  # fmt: skip
    later = {"kind": "once", "at": "2026-03-20T09:00:00Z"}
    for rule_id, task_id, schedule in (("daily", "t1", daily), ("seeds", "t2", later)):
        app.rules.create(
            {"id": rule_id, "recipient_id": "r1", "task_id": task_id,
             "topic": "task-reminder", "schedule": schedule},
            now=T0,
        )  # fmt: skip
    app.tick(FIRST)
    app.tick(FIRST + WINDOW)
    [path] = list((tmp_path / "outbox").glob("*.eml"))
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    unsubscribe = str(message["List-Unsubscribe"]).strip()[1:-1]
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    [preferences] = re.findall(r"https?://\S+/preferences/[\w.-]+", body.get_content())
    app.clock.set(FIRST + timedelta(hours=1))  # the recipient reads it later that morning
    return Mailed(server, _on_server(unsubscribe, server.url), _on_server(preferences, server.url))


def test_unsubscribe_from_the_link_in_a_sent_reminder(
    page: Any, mailed: Mailed, shoot: Callable[[Any, str], None]
) -> None:
    page.goto(mailed.unsubscribe_url)
    page.get_by_role("heading", name="Unsubscribe from reminder email?").wait_for()
    assert page.get_by_role("radio", name="This kind of email").is_checked()  # the link's scope
    assert mailed.preferences() == set()  # opening the page changes nothing
    shoot(page, "unsubscribe-confirm")

    page.get_by_role("radio", name="Reminders for this task").check()
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("heading", name="You are unsubscribed").wait_for()
    assert "Water the plants" in page.get_by_role("status").text_content()
    assert mailed.preferences() == {("task", "t1", False, "unsubscribe-page")}
    shoot(page, "unsubscribe-done")

    page.get_by_role("button", name=re.compile("subscribe again")).click()
    page.get_by_role("heading", name="You are subscribed again").wait_for()
    assert mailed.preferences() == {("task", "t1", True, "unsubscribe-page")}
    shoot(page, "unsubscribe-undone")


def test_change_preferences_in_the_preference_centre(
    page: Any, mailed: Mailed, shoot: Callable[[Any, str], None]
) -> None:
    page.goto(mailed.preferences_url)
    page.get_by_role("heading", name="Email preferences").wait_for()
    assert "a•••@example.com" in page.locator(".lead").text_content()
    assert page.get_by_label("Time zone").input_value() == "Europe/Berlin"
    shoot(page, "preferences")

    page.get_by_role("checkbox", name="Order seeds for spring").uncheck()
    page.get_by_role("checkbox", name=re.compile("^Digests")).uncheck()
    page.get_by_label("Time zone").select_option("America/New_York")
    page.get_by_label("From").fill("22:00")
    page.get_by_label("Until").fill("07:30")
    page.get_by_role("button", name="Save preferences").click()
    changed = [t.strip() for t in page.get_by_role("status").locator("li").all_text_contents()]
    assert changed == [
        "Turned off: Digests of a workspace's due and overdue tasks",
        "Turned off: Order seeds for spring (in Garden club)",
        "Time zone: Europe/Berlin → America/New_York",
        "Quiet hours: none → 22:00 to 07:30",
    ]
    assert mailed.preferences() == {
        ("task", "t2", False, "preferences-page"),
        ("topic", "workspace-digest", False, "preferences-page"),
    }
    recipient = mailed.recipient()
    assert (recipient.timezone, recipient.quiet_start, recipient.quiet_end) == (
        "America/New_York", "22:00", "07:30",
    )  # fmt: skip
    shoot(page, "preferences-saved")

    # Half a quiet-hours window is refused: nothing is written, the form comes back as filled.
    page.get_by_role("checkbox", name="Garden club").uncheck()
    page.get_by_label("Until").fill("")
    page.get_by_role("button", name="Save preferences").click()
    assert "give both ends of quiet hours" in page.get_by_role("alert").text_content()
    assert page.get_by_label("Until").get_attribute("aria-invalid") == "true"
    assert not page.get_by_role("checkbox", name="Garden club").is_checked()
    assert ("workspace", "w1", False, "preferences-page") not in mailed.preferences()
    assert mailed.recipient().quiet_end == "07:30"
    shoot(page, "preferences-refused")

    # The global switch, and clearing quiet hours.
    page.get_by_label("From").fill("")
    page.get_by_role("checkbox", name="Send me reminder email").uncheck()
    page.get_by_role("button", name="Save preferences").click()
    changed = [t.strip() for t in page.get_by_role("status").locator("li").all_text_contents()]
    assert changed == [
        "Turned off: Send me reminder email (Off stops every kind of reminder email below.)",
        "Turned off: Garden club (every reminder and digest about this workspace)",
        "Quiet hours: 22:00 to 07:30 → none",
    ]
    assert ("global", "", False, "preferences-page") in mailed.preferences()
    assert mailed.recipient().quiet_start is None


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)  # dialect-neutral: SQLite only
def test_hard_blocks_are_explained_not_toggled(
    page: Any, mailed: Mailed, shoot: Callable[[Any, str], None]
) -> None:
    mailed.live.app.preferences.suppress("ada@example.com", "hard_bounce", now=FIRST)
    page.goto(mailed.preferences_url)
    blocks = page.get_by_role("region", name="Why you may not get email")
    assert "bounced" in blocks.text_content()
    shoot(page, "preferences-blocked")
