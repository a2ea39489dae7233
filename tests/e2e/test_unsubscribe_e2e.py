"""A reminder goes out through SES (moto over HTTP); its one-click link works over real HTTP.

The issue's end-to-end path, on SQLite and PostgreSQL: a daily rule fires, the message
reaches moto as raw MIME, the test reads ``List-Unsubscribe`` back from what moto stored
and POSTs ``List-Unsubscribe=One-Click`` to it (uvicorn on 127.0.0.1 serving
``create_web_app``), and the rule's next occurrence is blocked at the ``topic`` layer.
Around it: GET and HEAD on the link change nothing, a tampered token changes nothing, a
multipart body works, and a second POST changes nothing more.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select

from scheduler.delivery.ses import DEFAULT_CONFIGURATION_SET, SesSender, make_ses_client
from scheduler.tables import Occurrence, Preference
from scheduler.web.app import create_web_app
from tests.e2e.live_server import serve
from tests.moto_server import MOTO_REGION, sent_raw_messages

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
FIRST = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NEXT = FIRST + timedelta(days=1)
WINDOW = timedelta(seconds=60)
PUBLIC_BASE = "https://app.timeplanpush.com"
URLENCODED = {"content-type": "application/x-www-form-urlencoded"}


@dataclass
class Delivered:
    app: Any
    moto: str
    server: str
    unsubscribe_url: str  # the link from the mail, re-pointed at the live server

    def occurrences(self) -> dict[datetime, Occurrence]:
        with self.app.sessions() as session:
            return {occ.fire_at: occ for occ in session.scalars(select(Occurrence))}

    def preferences(self) -> list[tuple[str, str, bool, str]]:
        with self.app.sessions() as session:
            rows = session.scalars(select(Preference).order_by(Preference.id))
            return [(r.scope, r.scope_id, r.email_enabled, r.source) for r in rows]


@pytest.fixture
def delivered(make_app: Any, moto_reset: str) -> Iterator[Delivered]:
    """One reminder sent through SES to moto, and the app served over HTTP."""
    client = make_ses_client(MOTO_REGION, moto_reset)
    client.create_email_identity(EmailIdentity="timeplanpush.com")
    client.create_configuration_set(ConfigurationSetName=DEFAULT_CONFIGURATION_SET)
    app = make_app(T0, sender=SesSender(client), base_url=PUBLIC_BASE)
    app.directory.upsert_recipient("r1", {"email": "ada@example.com"}, now=T0)
    app.directory.upsert_workspace("w1", {"name": "Launch"}, now=T0)
    app.directory.upsert_task(
        "t1", {"workspace_id": "w1", "title": "Water the plants", "url": None, "due_at": None},
        now=T0,
    )  # fmt: skip
    app.rules.create(
        {
            "id": "daily",
            "recipient_id": "r1",
            "task_id": "t1",
            "topic": "task-reminder",
            "schedule": {
                "kind": "recurring",
                "rrule": "FREQ=DAILY",
                "start": "2026-03-02T09:00",
                "timezone": "UTC",
            },
        },
        now=T0,
    )
    app.tick(FIRST)
    app.tick(FIRST + WINDOW)
    [raw] = sent_raw_messages(moto_reset)
    message = email.message_from_string(raw, policy=email.policy.default)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = str(message["List-Unsubscribe"]).strip()
    assert link.startswith(f"<{PUBLIC_BASE}/u/") and link.endswith(">")
    with serve(create_web_app(app)) as server:
        # The recipient clicks later that morning; the server's clock says so.
        app.clock.set(FIRST + timedelta(hours=1))
        path = urlsplit(link[1:-1]).path
        yield Delivered(app, moto_reset, server, f"{server}{path}")


def next_occurrence(world: Delivered) -> Occurrence:
    world.app.tick(NEXT)
    world.app.tick(NEXT + WINDOW)
    return world.occurrences()[NEXT]


def test_one_click_from_the_mail_blocks_the_next_occurrence(delivered: Delivered) -> None:
    with httpx.Client(follow_redirects=False, timeout=10) as http:
        # A link scanner fetches first: nothing may change.
        for method in ("GET", "HEAD"):
            looked = http.request(method, delivered.unsubscribe_url)
            assert looked.status_code == 200
        assert delivered.preferences() == []

        # Exactly the request RFC 8058 §3.2 describes: no cookie, no other context.
        clicked = http.post(
            delivered.unsubscribe_url, content=b"List-Unsubscribe=One-Click", headers=URLENCODED
        )
        assert clicked.status_code == 200
        assert "location" not in clicked.headers
        assert "set-cookie" not in clicked.headers
        assert delivered.preferences() == [("topic", "task-reminder", False, "one-click")]

        again = http.post(
            delivered.unsubscribe_url, content=b"List-Unsubscribe=One-Click", headers=URLENCODED
        )
        assert again.status_code == 200
        assert delivered.preferences() == [("topic", "task-reminder", False, "one-click")]

    blocked = next_occurrence(delivered)
    assert (blocked.status, blocked.layer) == ("blocked", "topic")
    assert len(sent_raw_messages(delivered.moto)) == 1


def test_a_multipart_one_click_body_works(delivered: Delivered) -> None:
    boundary = "----timeplan8058"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n'
        "\r\n"
        "One-Click\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    response = httpx.post(
        delivered.unsubscribe_url,
        content=body,
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        timeout=10,
    )
    assert response.status_code == 200
    assert "location" not in response.headers
    assert delivered.preferences() == [("topic", "task-reminder", False, "one-click")]
    assert next_occurrence(delivered).layer == "topic"


def test_a_tampered_link_changes_nothing(delivered: Delivered) -> None:
    base, token = delivered.unsubscribe_url.rsplit("/", 1)
    middle = len(token) // 2
    forged = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    with httpx.Client(timeout=10) as http:
        for method in ("GET", "HEAD", "POST"):
            response = http.request(
                method,
                f"{base}/{forged}",
                content=b"List-Unsubscribe=One-Click" if method == "POST" else None,
                headers=URLENCODED if method == "POST" else None,
            )
            assert 400 <= response.status_code < 500, method
    assert delivered.preferences() == []
    sent = next_occurrence(delivered)
    assert sent.status == "sent"
    assert len(sent_raw_messages(delivered.moto)) == 2
