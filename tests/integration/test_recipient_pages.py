"""Recipient pages in-process (``/u/{token}``, ``/preferences/{token}``) on both dialects.

The e2e test (tests/e2e/test_unsubscribe_e2e.py) follows a real mail's link over HTTP;
here every branch of the pages is checked quickly: what GET/HEAD leave alone, what each
body does, the security headers, the same-origin check, and bad tokens.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from scheduler.delivery.tokens import TokenSigner, UnsubscribeClaim
from scheduler.tables import Preference
from scheduler.web.app import create_web_app
from scheduler.web.pages import CONTENT_SECURITY_POLICY

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TITLE = "Ship <script>alert(1)</script> 🚀"
ONE_CLICK = {"content": b"List-Unsubscribe=One-Click", "headers": {
    "content-type": "application/x-www-form-urlencoded"}}  # fmt: skip


@pytest.fixture
def app(make_app: Any) -> Any:
    app = make_app(T0)
    app.directory.upsert_recipient("r1", {"email": "ada@example.com"}, now=T0)
    app.directory.upsert_workspace("w1", {"name": "Launch <b>"}, now=T0)
    app.directory.upsert_task(
        "t1", {"workspace_id": "w1", "title": TITLE, "url": None, "due_at": None}, now=T0
    )
    for rule_id, target in (("rule-t", {"task_id": "t1"}), ("rule-w", {"workspace_id": "w1"})):
        topic = "task-reminder" if "task_id" in target else "workspace-digest"
        schedule = {"kind": "once", "at": (T0 + timedelta(days=1)).isoformat()}
        app.rules.create(
            {"id": rule_id, "recipient_id": "r1", "topic": topic, "schedule": schedule} | target,
            now=T0,
        )
    return app


@pytest.fixture
def client(app: Any) -> TestClient:
    return TestClient(create_web_app(app), follow_redirects=False)


def token(app: Any, **overrides: Any) -> str:
    values: dict[str, Any] = {
        "recipient_id": "r1",
        "scope": "topic",
        "topic": "task-reminder",
        "workspace_id": "w1",
        "task_id": "t1",
        "message_id": "42",
    } | overrides
    return str(app.signer.sign(UnsubscribeClaim(**values), now=T0))


def choices(app: Any) -> dict[str, Any]:
    found = app.preferences.get("r1")
    found.pop("blocks")
    return dict(found)


def preference_rows(app: Any) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(Preference)) or 0)


def assert_page_headers(response: Any) -> None:
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"].startswith("text/html")
    assert "location" not in response.headers
    assert "set-cookie" not in response.headers


# --- /u/{token}: GET and HEAD change nothing -------------------------------------------


def test_get_shows_the_choices_and_changes_nothing(app: Any, client: TestClient) -> None:
    response = client.get(f"/u/{token(app)}")

    assert response.status_code == 200
    assert_page_headers(response)
    html = response.text
    for scope in ("task", "workspace", "topic", "all"):
        assert f'name="scope" value="{scope}"' in html
    assert 'value="topic" checked' in html
    assert "Ship &lt;script&gt;alert(1)&lt;/script&gt; 🚀" in html and "<script>" not in html
    assert "Launch &lt;b&gt;" in html
    assert f'action="/u/{token(app)}"' in html
    assert 'href="/preferences/' in html
    assert preference_rows(app) == 0


def test_head_answers_without_a_body_and_changes_nothing(app: Any, client: TestClient) -> None:
    response = client.head(f"/u/{token(app)}")
    assert response.status_code == 200
    assert response.content == b""
    assert_page_headers(response)
    assert preference_rows(app) == 0


def test_only_the_scopes_the_claim_can_name_are_offered(app: Any, client: TestClient) -> None:
    html = client.get(f"/u/{token(app, task_id=None, workspace_id=None)}").text
    assert 'value="topic"' in html and 'value="all"' in html
    assert 'value="task"' not in html and 'value="workspace"' not in html


# --- /u/{token}: the RFC 8058 one-click POST --------------------------------------------


def test_one_click_urlencoded_turns_the_topic_off_idempotently(
    app: Any, client: TestClient
) -> None:
    url = f"/u/{token(app)}"
    first = client.post(url, **ONE_CLICK)
    assert first.status_code == 200
    assert_page_headers(first)
    assert "You are unsubscribed" in first.text
    assert choices(app)["topics"] == {"task-reminder": False}

    again = client.post(url, **ONE_CLICK)
    assert again.status_code == 200
    assert choices(app)["topics"] == {"task-reminder": False}
    assert preference_rows(app) == 1
    with app.sessions() as session:
        row = session.scalars(select(Preference)).one()
    assert (row.scope, row.scope_id, row.source) == ("topic", "task-reminder", "one-click")


def test_one_click_multipart_body_works(app: Any, client: TestClient) -> None:
    response = client.post(f"/u/{token(app)}", files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert choices(app)["topics"] == {"task-reminder": False}


def test_one_click_is_not_subject_to_the_same_origin_check(app: Any, client: TestClient) -> None:
    # A mail provider (or a webmail page) posts from elsewhere: RFC 8058 allows it.
    headers = ONE_CLICK["headers"] | {"sec-fetch-site": "cross-site", "origin": "https://x.test"}
    response = client.post(f"/u/{token(app)}", content=ONE_CLICK["content"], headers=headers)
    assert response.status_code == 200
    assert choices(app)["topics"] == {"task-reminder": False}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/x-www-form-urlencoded"),
        (b"List-Unsubscribe=one-click", "application/x-www-form-urlencoded"),
        (b"List-Unsubscribe=One-Click&extra=1", "application/x-www-form-urlencoded"),
        (b"List-Unsubscribe=One-Click", "text/plain"),
        (b'{"List-Unsubscribe": "One-Click"}', "application/json"),
        (b"scope=everything", "application/x-www-form-urlencoded"),
        (b"scope=topic&scope=all", "application/x-www-form-urlencoded"),
        (b"--b\r\nbroken", "multipart/form-data; boundary=b"),
    ],
)
def test_any_other_body_is_a_400_page_and_changes_nothing(
    app: Any, client: TestClient, body: bytes, content_type: str
) -> None:
    response = client.post(f"/u/{token(app)}", content=body, headers={"content-type": content_type})
    assert response.status_code == 400
    assert_page_headers(response)
    assert "Nothing was changed" in response.text
    assert preference_rows(app) == 0


def test_a_file_upload_is_refused(app: Any, client: TestClient) -> None:
    response = client.post(
        f"/u/{token(app)}", files={"List-Unsubscribe": ("x.txt", b"One-Click", "text/plain")}
    )
    assert response.status_code == 400
    assert preference_rows(app) == 0


# --- /u/{token}: our own form, and undo ---------------------------------------------------


def test_a_chosen_scope_applies_and_can_be_undone(app: Any, client: TestClient) -> None:
    url = f"/u/{token(app)}"
    response = client.post(url, data={"scope": "workspace"})
    assert response.status_code == 200
    assert choices(app)["workspaces"] == {"w1": False}
    assert choices(app)["topics"] == {}
    assert f'action="{url}/resubscribe"' in response.text
    assert 'name="scope" value="workspace"' in response.text

    undone = client.post(f"{url}/resubscribe", data={"scope": "workspace"})
    assert undone.status_code == 200
    assert_page_headers(undone)
    assert "subscribed again" in undone.text
    assert choices(app)["workspaces"] == {"w1": True}


def test_all_turns_the_global_switch_off(app: Any, client: TestClient) -> None:
    assert client.post(f"/u/{token(app)}", data={"scope": "all"}).status_code == 200
    assert choices(app)["email_enabled"] is False


def test_a_scope_the_claim_cannot_name_is_refused(app: Any, client: TestClient) -> None:
    response = client.post(f"/u/{token(app, task_id=None)}", data={"scope": "task"})
    assert response.status_code == 400
    assert preference_rows(app) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "https://evil.example"},
    ],
)
def test_our_forms_refuse_posts_from_other_sites(
    app: Any, client: TestClient, headers: dict[str, str]
) -> None:
    url = f"/u/{token(app)}"
    assert client.post(url, data={"scope": "all"}, headers=headers).status_code == 403
    assert (
        client.post(f"{url}/resubscribe", data={"scope": "all"}, headers=headers).status_code == 403
    )
    assert preference_rows(app) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "same-origin", "origin": "null"},
        {"origin": "null"},  # what Referrer-Policy: no-referrer makes a browser send
        {"origin": "http://testserver"},
        {"origin": "http://127.0.0.1:8000"},  # the configured BASE_URL
    ],
)
def test_our_forms_accept_same_origin_posts(
    app: Any, client: TestClient, headers: dict[str, str]
) -> None:
    assert (
        client.post(f"/u/{token(app)}", data={"scope": "all"}, headers=headers).status_code == 200
    )


# --- bad tokens ---------------------------------------------------------------------------


def tampered(value: str) -> str:
    """The token with one character of its payload (the longest segment) changed."""
    parts = value.split(".")
    index = max(range(len(parts)), key=lambda i: len(parts[i]))
    payload = parts[index]
    middle = len(payload) // 2
    parts[index] = (
        payload[:middle] + ("A" if payload[middle] != "A" else "B") + payload[middle + 1 :]
    )
    return ".".join(parts)


def test_bad_tokens_get_a_4xx_page_and_change_nothing(app: Any, client: TestClient) -> None:
    foreign = TokenSigner(["another-key-entirely-0123456789"], max_age=timedelta(days=30))
    claim = UnsubscribeClaim("r1", "topic", "task-reminder", "w1", "t1", "42")
    bad = {
        "tampered": tampered(token(app)),
        "foreign": foreign.sign(claim, now=T0),
        "malformed": "not-a-token",
        "preference token": app.signer.sign_preferences("r1", now=T0),
    }
    for name, value in bad.items():
        for method in ("GET", "HEAD", "POST"):
            response = client.request(
                method, f"/u/{value}", **(ONE_CLICK if method == "POST" else {})
            )
            assert response.status_code == 400, (name, method)
            assert_page_headers(response)
    assert (
        client.post(f"/u/{tampered(token(app))}/resubscribe", data={"scope": "topic"}).status_code
        == 400
    )
    assert preference_rows(app) == 0


def test_an_expired_token_is_410(app: Any, client: TestClient) -> None:
    url = f"/u/{token(app)}"
    app.clock.set(T0 + timedelta(days=app.settings.token_max_age_days, seconds=1))
    assert client.get(url).status_code == 410
    response = client.post(url, **ONE_CLICK)
    assert response.status_code == 410
    assert "expired" in response.text
    assert preference_rows(app) == 0


def test_one_click_for_an_account_that_no_longer_exists(app: Any, client: TestClient) -> None:
    response = client.post(f"/u/{token(app, recipient_id='ghost')}", **ONE_CLICK)
    assert response.status_code == 200
    assert "no longer exists" in response.text


# --- /preferences/{token} ------------------------------------------------------------------


def preferences_url(app: Any) -> str:
    return f"/preferences/{app.signer.sign_preferences('r1', now=T0)}"


def shown_keys(html: str) -> list[str]:
    marker = 'name="shown" value="'
    return [part.split('"', 1)[0] for part in html.split(marker)[1:]]


def test_the_preference_page_shows_every_level_with_names(app: Any, client: TestClient) -> None:
    response = client.get(preferences_url(app))
    assert response.status_code == 200
    assert_page_headers(response)
    html = response.text
    assert shown_keys(html) == [
        "global:",
        "topic:task-reminder",
        "topic:workspace-digest",
        "workspace:w1",
        "task:t1",
    ]
    assert "Ship &lt;script&gt;" in html and "<script>" not in html
    assert "Launch &lt;b&gt;" in html
    assert html.count(" checked") == 5
    assert client.head(preferences_url(app)).status_code == 200
    assert preference_rows(app) == 0


def test_saving_writes_only_what_changed_and_says_so(app: Any, client: TestClient) -> None:
    url = preferences_url(app)
    keys = shown_keys(client.get(url).text)
    on = [k for k in keys if k not in ("task:t1", "topic:workspace-digest")]

    response = client.post(url, data={"shown": keys, "on": on})

    assert response.status_code == 200
    assert_page_headers(response)
    assert "Turned off" in response.text and "Saved." in response.text
    assert choices(app) == {
        "email_enabled": None,  # untouched levels stay unset
        "topics": {"workspace-digest": False},
        "workspaces": {},
        "tasks": {"t1": False},
    }
    repeat = client.post(url, data={"shown": keys, "on": on})
    assert "Nothing changed" in repeat.text
    assert preference_rows(app) == 2


def test_a_level_the_form_did_not_show_is_never_switched_off(app: Any, client: TestClient) -> None:
    client.post(preferences_url(app), data={"shown": ["global:", "task:nope"], "on": []})
    assert choices(app)["email_enabled"] is False
    assert choices(app)["tasks"] == {}


def test_resubscribing_on_the_page_after_unsubscribe_all(app: Any, client: TestClient) -> None:
    client.post(f"/u/{token(app)}", data={"scope": "all"})
    url = preferences_url(app)
    html = client.get(url).text
    assert (
        'value="global:">' in html.replace(" checked", "") and 'value="global:" checked' not in html
    )
    keys = shown_keys(html)

    response = client.post(url, data={"shown": keys, "on": keys})

    assert "Turned on" in response.text
    assert choices(app)["email_enabled"] is True


def test_hard_blocks_are_explained_and_survive_a_resubscribe(app: Any, client: TestClient) -> None:
    app.preferences.suppress("ada@example.com", "complaint", now=T0)
    url = preferences_url(app)
    html = client.get(url).text
    assert "reported as spam" in html
    keys = shown_keys(html)
    client.post(url, data={"shown": keys, "on": keys})
    assert [b["reason"] for b in app.preferences.get("r1")["blocks"]] == ["complaint"]
    assert "reported as spam" in client.get(url).text


def test_the_preference_page_refuses_bad_tokens_and_other_sites(
    app: Any, client: TestClient
) -> None:
    url = preferences_url(app)
    data = {"shown": ["global:"], "on": []}
    assert client.post(url, data=data, headers={"sec-fetch-site": "cross-site"}).status_code == 403
    assert client.get(f"/preferences/{tampered(url.rsplit('/', 1)[1])}").status_code == 400
    assert client.get(f"/preferences/{token(app)}").status_code == 400  # an unsubscribe token
    assert client.post(url, content=b"", headers={"content-type": "text/plain"}).status_code == 400
    assert preference_rows(app) == 0


def test_the_stylesheet_is_ours_and_served_locally(client: TestClient) -> None:
    response = client.get("/static/pages.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "@import" not in response.text and "url(" not in response.text
