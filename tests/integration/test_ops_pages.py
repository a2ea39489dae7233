"""``/ops`` pages in-process on both dialects: headers, the session cookie, who gets in.

The browser tests (tests/browser/test_ops_dashboard.py) drive the same pages in Chromium;
here the branches a browser cannot easily reach are checked quickly.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from scheduler.tables import ApiKey, RampChange
from scheduler.web.app import create_web_app
from scheduler.web.ops_pages import CONTENT_SECURITY_POLICY

NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None
    return found.group(1)


@pytest.fixture
def app(make_app: Any) -> Any:
    return make_app(NOW, open_ramp=False)


def client_for(app: Any, base_url: str = "http://127.0.0.1:8000") -> TestClient:
    return TestClient(create_web_app(app), base_url=base_url, follow_redirects=False)


def signed_in(app: Any, key: str | None = None) -> tuple[TestClient, str]:
    client = client_for(app)
    key = key or app.keys.create({"ops"}, now=NOW)
    token = csrf_of(client.get("/ops/login").text)
    answer = client.post("/ops/login", data={"csrf": token, "key": key})
    assert answer.status_code == 303 and answer.headers["location"] == "/ops"
    return client, csrf_of(client.get("/ops").text)


def changes(app: Any) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(RampChange)) or 0)


def test_pages_carry_the_strict_policy_and_the_cookie_is_locked_down(app: Any) -> None:
    client = client_for(app)
    page = client.get("/ops/login")
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert CONTENT_SECURITY_POLICY == (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    assert page.headers["referrer-policy"] == "same-origin"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["x-content-type-options"] == "nosniff"
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ops" in cookie
    assert "Secure" not in cookie  # plain http on loopback: a Secure cookie would be dropped
    assert "<script" not in page.text and "style=" not in page.text


def test_the_cookie_is_secure_when_the_site_is_https(make_app: Any) -> None:
    app = make_app(NOW, base_url="https://ops.timeplanpush.com")
    cookie = client_for(app, "https://ops.timeplanpush.com").get("/ops/login")
    assert "Secure" in cookie.headers["set-cookie"]


def test_the_dashboard_needs_a_signed_in_session(app: Any) -> None:
    client = client_for(app)
    assert client.get("/ops").headers["location"] == "/ops/login"
    client.get("/ops/login")  # a session that only carries the login form's CSRF secret
    assert client.get("/ops").headers["location"] == "/ops/login"


def test_the_cookie_holds_the_key_id_never_the_key(app: Any) -> None:
    key = app.keys.create({"ops"}, now=NOW)
    client, _ = signed_in(app, key)
    value = client.cookies.get("ops_session")
    assert value and key not in value and key.split("_", 2)[2] not in value
    page = client.get("/ops")
    assert page.status_code == 200 and key.split("_", 2)[2] not in page.text


def test_revoking_the_key_ends_its_sessions(app: Any) -> None:
    key = app.keys.create({"ops"}, now=NOW)
    client, _ = signed_in(app, key)
    with app.sessions.begin() as session:
        session.execute(update(ApiKey).values(revoked_at=NOW))
    assert client.get("/ops").headers["location"] == "/ops/login"


def test_a_session_expires(app: Any) -> None:
    client, _ = signed_in(app)
    app.clock.set(NOW + timedelta(hours=12, minutes=1))
    assert client.get("/ops").headers["location"] == "/ops/login"


def test_signing_in_gives_a_new_csrf_secret(app: Any) -> None:
    client = client_for(app)
    before = csrf_of(client.get("/ops/login").text)
    token = csrf_of(
        client.post(
            "/ops/login", data={"csrf": before, "key": app.keys.create({"ops"}, now=NOW)},
            follow_redirects=True,
        ).text
    )  # fmt: skip
    assert token != before
    answer = client.post("/ops/controls/pause", data={"csrf": before, "reason": "old token"})
    assert answer.status_code == 403


def test_changes_are_refused_cross_site_or_without_the_token(app: Any) -> None:
    client, token = signed_in(app)
    before = changes(app)
    cross = {"sec-fetch-site": "cross-site"}
    assert client.post("/ops/controls/pause", data={"csrf": token, "reason": "x"},
                       headers=cross).status_code == 403  # fmt: skip
    assert client.post("/ops/controls/pause", data={"reason": "x"}).status_code == 403
    assert client.post("/ops/logout", data={}).status_code == 403
    assert changes(app) == before
    assert client.get("/ops").status_code == 200  # still signed in


def test_a_change_is_audited_under_the_key(app: Any) -> None:
    key = app.keys.create({"ops"}, now=NOW)
    client, token = signed_in(app, key)
    answer = client.post(
        "/ops/controls/set",
        data={"csrf": token, "daily_limit": "2 000", "rate_per_second": "1.5", "reason": "w2"},
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/ops?done=set#ramp"
    [latest] = app.ramp.history(1)
    assert latest.actor == f"key:{key.split('_')[1]}"
    assert (latest.new["daily_limit"], latest.new["rate_per_second"]) == (2000, 1.5)


@pytest.mark.parametrize(
    ("action", "data", "status", "message"),
    [
        ("set", {"daily_limit": "-5", "reason": "r"}, 422, "whole number"),
        ("set", {"daily_limit": "100", "rate_per_second": "fast", "reason": "r"}, 422,
         "messages per second"),
        ("set", {"daily_limit": "100", "rate_per_second": "nan", "reason": "r"}, 422, "above 0"),
        ("set", {"daily_limit": "100", "reason": "  "}, 422, "say why"),
        ("resume", {"reason": "not paused"}, 409, "nothing to resume"),
        ("explode", {"reason": "r"}, 404, "No such control"),
    ],
)  # fmt: skip
def test_refused_changes_write_nothing(
    app: Any, action: str, data: dict[str, str], status: int, message: str
) -> None:
    client, token = signed_in(app)
    before = changes(app)
    answer = client.post(f"/ops/controls/{action}", data={"csrf": token, **data})
    assert answer.status_code == status
    assert message in answer.text
    assert changes(app) == before


def test_logout_clears_the_cookie(app: Any) -> None:
    client, token = signed_in(app)
    answer = client.post("/ops/logout", data={"csrf": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/ops/login"
    assert 'ops_session=""' in answer.headers["set-cookie"]
    assert client.get("/ops").headers["location"] == "/ops/login"
