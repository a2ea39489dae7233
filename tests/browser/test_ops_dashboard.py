"""The operator dashboard in Chromium: sign in, read the charts, change the ramp, CSRF."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from scheduler.db import transaction
from scheduler.delivery.send_day import increment
from scheduler.tables import RampChange
from tests.browser.conftest import Live

pytestmark = pytest.mark.browser

NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
# Flows whose database side is dialect-neutral run on SQLite only, to keep the suite fast.
sqlite_only = pytest.mark.parametrize("db", ["sqlite"], indirect=True)
VOLUME_CHART = "Sent and delivered per day against the daily limit, last 30 days"


def seed_month(live: Live) -> None:
    """A month of a ramp that grew, slipped on a bad day, and grew again."""
    ramp = live.app.ramp
    ramp.ensure(NOW - timedelta(days=40))
    ramp.set_manual(500, None, "warm-up week 2", "cli:alice", NOW - timedelta(days=22))
    ramp.auto("cli:alice", NOW - timedelta(days=12), "hand back to the policy")
    with transaction(live.app.sessions) as session:
        for back in range(1, 28):
            day = (NOW - timedelta(days=back)).date()
            sent = 120 + (27 - back) * 12
            figures = {
                "sent": sent,
                "delivered": sent - 3,
                "bounced": 9 if back == 6 else 1 + back % 3,
                "complained": 1 if back == 9 else 0,
            }
            for column, amount in figures.items():
                increment(session, "transactional", day, column, amount)


def sign_in(page: Any, live: Live, key: str) -> None:
    page.goto(f"{live.url}/ops")
    page.get_by_label("Operator API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def audit(live: Live) -> list[RampChange]:
    with live.app.sessions() as session:
        return list(session.scalars(select(RampChange).order_by(RampChange.id)))


def test_sign_in_read_the_charts_and_change_the_ramp(
    page: Any, live: Callable[..., Live], shoot: Callable[[Any, str], None]
) -> None:
    server = live(NOW, open_ramp=False)
    seed_month(server)
    key = server.app.keys.create({"ops"}, now=NOW, name="browser test")
    key_id = key.split("_")[1]

    page.goto(f"{server.url}/ops")
    assert page.url.endswith("/ops/login")  # not signed in: the form, not the data
    shoot(page, "ops-login")
    sign_in(page, server, key)
    assert page.url == f"{server.url}/ops"
    page.get_by_role("heading", name=re.compile("Sending dashboard")).wait_for()

    cookie = next(c for c in page.context.cookies() if c["name"] == "ops_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ops"
    assert key.split("_", 2)[2] not in cookie["value"]  # the session holds an id, not the key

    chart = page.get_by_role("img", name=VOLUME_CHART)
    assert chart.evaluate("e => e.tagName") == "svg"
    description = page.locator("#volume-desc").text_content()
    assert "Busiest day 2025-03-09" in description
    assert "The daily limit today is 500" in description
    assert page.get_by_role("img", name="Bounce rate per day, last 30 days").is_visible()
    assert page.get_by_role("img", name="Complaint rate per day, last 30 days").is_visible()
    assert page.locator("svg rect.bar-sent:has(title)").count() == 27
    # The data table alternative holds the same figures.
    page.get_by_text("The same figures as a table").click()
    row = page.get_by_role("row", name=re.compile("^2025-03-09"))
    assert row.get_by_role("cell").all_text_contents()[:3] == ["432", "429", "500"]
    shoot(page, "ops-dashboard")

    page.get_by_label("Daily limit (messages a day)").fill("5000")
    page.get_by_label("Rate (messages a second, optional)").fill("2.5")
    page.locator("#set-reason").fill("warm-up week 3")
    page.get_by_role("button", name="Set limit").click()
    page.get_by_role("status").filter(has_text="The manual limit is set.").wait_for()
    first = page.locator("#history tbody tr").first
    assert f"key:{key_id}" in first.text_content()
    assert "limit 500 → 5,000/day" in first.text_content()
    assert "warm-up week 3" in first.text_content()
    latest = audit(server)[-1]
    assert latest.actor == f"key:{key_id}"
    assert latest.new["daily_limit"] == 5000 and latest.new["rate_per_second"] == 2.5
    assert latest.reason == "warm-up week 3"
    shoot(page, "ops-changed")

    page.get_by_label("Reason for pausing").fill("complaint spike")
    page.get_by_role("button", name="Pause").click()
    page.get_by_role("status").filter(has_text="Sending is paused.").wait_for()
    assert audit(server)[-1].new["mode"] == "paused"
    assert page.get_by_role("button", name="Resume").is_visible()

    page.get_by_role("button", name="Sign out").click()
    assert page.url.endswith("/ops/login")
    page.goto(f"{server.url}/ops")
    assert page.url.endswith("/ops/login")


@sqlite_only
def test_a_bad_change_is_explained_and_nothing_is_written(
    page: Any, live: Callable[..., Live], shoot: Callable[[Any, str], None]
) -> None:
    server = live(NOW, open_ramp=False)
    sign_in(page, server, server.app.keys.create({"ops"}, now=NOW))
    before = len(audit(server))
    page.get_by_label("Daily limit (messages a day)").fill("lots")
    page.locator("#set-reason").fill("typo")
    page.get_by_role("button", name="Set limit").click()
    alert = page.get_by_role("alert")
    assert "whole number" in alert.text_content()
    assert page.get_by_label("Daily limit (messages a day)").get_attribute("aria-invalid") == "true"
    assert page.locator("#set-reason").input_value() == "typo"  # what was typed stays
    assert len(audit(server)) == before
    shoot(page, "ops-invalid")


@sqlite_only
def test_posts_without_the_token_or_from_another_origin_change_nothing(
    page: Any, live: Callable[..., Live]
) -> None:
    server = live(NOW, open_ramp=False)
    sign_in(page, server, server.app.keys.create({"ops"}, now=NOW))
    token = page.locator("form[action='/ops/controls/pause'] input[name=csrf]").input_value()
    before = len(audit(server))
    pause = f"{server.url}/ops/controls/pause"

    # The browser context's request API sends the session cookie like the page would.
    without = page.request.post(pause, form={"reason": "forged"})
    wrong = page.request.post(pause, form={"reason": "forged", "csrf": token[:-2] + "xx"})
    foreign = page.request.post(
        pause, form={"reason": "forged", "csrf": token}, headers={"Origin": "https://evil.test"}
    )
    assert (without.status, wrong.status, foreign.status) == (403, 403, 403)
    assert "Nothing was changed" in without.text()
    assert len(audit(server)) == before

    same = page.request.post(
        pause, form={"reason": "real", "csrf": token}, headers={"Origin": server.url}
    )
    assert same.ok and audit(server)[-1].actor.startswith("key:")


@sqlite_only
def test_a_wrong_key_or_a_key_without_the_ops_scope_cannot_sign_in(
    page: Any, live: Callable[..., Live], shoot: Callable[[Any, str], None]
) -> None:
    server = live(NOW, open_ramp=False)
    real = server.app.keys.create({"ops"}, now=NOW)
    rules_only = server.app.keys.create({"rules"}, now=NOW)
    for attempt in (real[:-4] + "abcd", rules_only, "not-a-key"):
        sign_in(page, server, attempt)
        assert page.url.endswith("/ops/login")
        assert "not an operator key" in page.get_by_role("alert").text_content()
        assert page.get_by_label("Operator API key").get_attribute("aria-invalid") == "true"
    shoot(page, "ops-login-refused")
    page.goto(f"{server.url}/ops")
    assert page.url.endswith("/ops/login")
