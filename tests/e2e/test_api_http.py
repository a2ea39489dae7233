"""The ``/v1`` API over real HTTP (uvicorn in a thread) on SQLite and PostgreSQL.

Time is a parameter: the app's clock is fixed and the pipeline is driven in-process with
``app.pipeline.tick(now)``, so nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text

from scheduler.app import build_app
from scheduler.db import make_engine
from scheduler.tables import Occurrence
from tests.conftest import Database
from tests.e2e.live_api import START, LiveApi, live_api, serve, settings_for

PROBLEM = "application/problem+json"
DUE = START + timedelta(hours=4)  # 12:00Z


@pytest.fixture
def api(db: Database, tmp_path: Path) -> Iterator[LiveApi]:
    with live_api(db, tmp_path, max_body_bytes=4096) as live:
        yield live


@pytest.fixture
def http(api: LiveApi) -> Iterator[httpx.Client]:
    with api.client() as client:
        yield client


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def instant(text_value: str | None) -> datetime | None:
    return datetime.fromisoformat(text_value) if text_value else None


def register(http: httpx.Client, *, due: datetime = DUE) -> None:
    assert (
        http.put(
            "/v1/recipients/u1",
            json={
                "email": "ada@example.com",
                "timezone": "Europe/Berlin",
                "locale": "en",
                "quiet_hours": None,
            },
        ).status_code
        == 200
    )
    assert http.put("/v1/workspaces/w1", json={"name": "Launch"}).status_code == 200
    assert (
        http.put(
            "/v1/tasks/t1",
            json={
                "workspace_id": "w1",
                "title": "Ship the release",
                "url": "https://app.example/t/1",
                "due_at": iso(due),
                "status": "open",
            },
        ).status_code
        == 200
    )


RULE: dict[str, Any] = {
    "id": "r1",
    "recipient_id": "u1",
    "task_id": "t1",
    "topic": "task-reminder",
    "schedule": {"kind": "relative", "offset": "-PT30M"},
}


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"]
    if field is not None:
        assert body.get("field") == field, body


# --- the whole lifecycle ---------------------------------------------------------------


def test_task_reminder_lifecycle(api: LiveApi, http: httpx.Client) -> None:
    register(http)
    created = http.post("/v1/rules", json=RULE)
    assert created.status_code == 201, created.text
    rule = created.json()
    assert rule["id"] == "r1"
    assert created.headers["location"] == "/v1/rules/r1"
    assert instant(rule["next_fire_at"]) == DUE - timedelta(minutes=30)

    fire_at = DUE - timedelta(minutes=30)
    for minutes in (1, 3):  # fire + decide + open the batch, then close and send it
        api.clock.set(fire_at + timedelta(minutes=minutes))
        api.app.pipeline.tick(api.clock.now())

    after = http.get("/v1/rules/r1").json()
    assert after["next_fire_at"] is None  # a relative rule fires once
    explained = http.get(
        "/v1/recipients/u1/explain",
        params={"from": iso(START), "to": iso(DUE)},
    )
    assert explained.status_code == 200, explained.text
    items = explained.json()["items"]
    assert [(i["rule_id"], instant(i["fire_at"]), i["decision"]) for i in items] == [
        ("r1", fire_at, "send")
    ]
    assert items[0]["layer"] is None
    assert list((api.app.settings.outbox_dir).glob("*.eml"))

    metrics = httpx.get(f"{api.base_url}/metrics").text
    assert 'reminders_messages{status="sent"} 1.0' in metrics
    assert "reminders_send_latency_seconds_count 1.0" in metrics
    assert 'reminders_occurrences{layer="none",status="sent"} 1.0' in metrics
    assert 'reminders_ramp_sent_today{stream="transactional"} 1.0' in metrics
    assert "reminders_ramp_daily_limit{" in metrics


def test_due_date_change_replans_and_done_retires(api: LiveApi, http: httpx.Client) -> None:
    register(http)
    http.post("/v1/rules", json=RULE)
    moved = DUE + timedelta(days=1)
    task = http.put(
        "/v1/tasks/t1",
        json={"workspace_id": "w1", "title": "Ship the release", "due_at": iso(moved)},
    )
    assert task.status_code == 200
    assert instant(task.json()["due_at"]) == moved
    rule = http.get("/v1/rules/r1").json()
    assert instant(rule["next_fire_at"]) == moved - timedelta(minutes=30)
    assert rule["version"] == 2

    done = http.put(
        "/v1/tasks/t1",
        json={
            "workspace_id": "w1",
            "title": "Ship the release",
            "due_at": iso(moved),
            "status": "done",
        },
    )
    assert done.json()["status"] == "done"
    rule = http.get("/v1/rules/r1").json()
    assert rule["active"] is False
    assert rule["next_fire_at"] is None
    assert http.get("/v1/tasks/t1").json()["status"] == "done"


def test_rule_create_is_idempotent_with_a_client_id(http: httpx.Client) -> None:
    register(http)
    first = http.post("/v1/rules", json=RULE)
    again = http.post("/v1/rules", json=RULE)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    other = http.post(
        "/v1/rules", json={**RULE, "schedule": {"kind": "relative", "offset": "-PT1H"}}
    )
    assert_problem(other, 409)
    assert http.get("/v1/recipients/u1/rules").json()["items"] == [first.json()]


def test_rule_patch_get_delete(http: httpx.Client) -> None:
    register(http)
    http.post("/v1/rules", json=RULE)
    patched = http.patch("/v1/rules/r1", json={"schedule": {"kind": "relative", "offset": "-PT2H"}})
    assert patched.status_code == 200, patched.text
    assert instant(patched.json()["next_fire_at"]) == DUE - timedelta(hours=2)
    assert patched.json()["version"] == 2
    assert http.delete("/v1/rules/r1").status_code == 204
    gone = http.get("/v1/rules/r1").json()
    assert (gone["active"], gone["next_fire_at"]) == (False, None)


def test_rules_are_paged_with_a_cursor(http: httpx.Client) -> None:
    register(http)
    for n in range(5):
        assert http.post("/v1/rules", json={**RULE, "id": f"r{n}"}).status_code == 201
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = http.get("/v1/recipients/u1/rules", params=params).json()
        seen += [r["id"] for r in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"r{n}" for n in range(5)]
    assert pages == 3


def test_snooze_fires_once_more(api: LiveApi, http: httpx.Client) -> None:
    register(http)
    http.post("/v1/rules", json=RULE)
    api.clock.set(DUE - timedelta(minutes=29))
    api.app.pipeline.tick(api.clock.now())
    with api.app.sessions() as session:
        occurrence_id = session.scalar(select(Occurrence.id))
    first = http.post(f"/v1/occurrences/{occurrence_id}/snooze", json={"minutes": 10})
    assert first.status_code == 200, first.text
    assert instant(first.json()["fire_at"]) == api.clock.now() + timedelta(minutes=10)
    again = http.post(f"/v1/occurrences/{occurrence_id}/snooze", json={"minutes": 10})
    assert again.json()["id"] == first.json()["id"]
    assert_problem(http.post("/v1/occurrences/999999/snooze", json={"minutes": 10}), 404)
    assert_problem(
        http.post(f"/v1/occurrences/{occurrence_id}/snooze", json={"minutes": 0}), 422, "minutes"
    )


def test_preferences_get_patch_and_null_removes(http: httpx.Client) -> None:
    register(http)
    empty = http.get("/v1/recipients/u1/preferences").json()
    assert empty == {
        "email_enabled": None,
        "topics": {},
        "workspaces": {},
        "tasks": {},
        "blocks": [],
    }
    changed = http.patch(
        "/v1/recipients/u1/preferences",
        json={"topics": {"task-reminder": False}, "workspaces": {"w1": True}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["topics"] == {"task-reminder": False}
    removed = http.patch("/v1/recipients/u1/preferences", json={"topics": {"task-reminder": None}})
    assert removed.json()["topics"] == {}
    assert removed.json()["workspaces"] == {"w1": True}
    assert_problem(
        http.patch("/v1/recipients/u1/preferences", json={"topics": {"nope": False}}),
        422,
        "topics.nope",
    )


def test_account_deletion(http: httpx.Client) -> None:
    register(http)
    http.post("/v1/rules", json=RULE)
    assert http.delete("/v1/recipients/u1").status_code == 204
    assert http.delete("/v1/recipients/u1").status_code == 204  # idempotent
    recipient = http.get("/v1/recipients/u1").json()
    assert (recipient["status"], recipient["email"]) == ("deleted", None)
    assert http.get("/v1/rules/r1").json()["active"] is False
    assert_problem(http.delete("/v1/recipients/nobody"), 404)


# --- every documented bad input -----------------------------------------------------------

TASK = {"workspace_id": "w1", "title": "T", "due_at": iso(DUE)}
BAD_INPUTS = [
    (
        "unknown field",
        "put",
        "/v1/recipients/u2",
        {"email": "b@example.com", "nickname": "b"},
        422,
        "nickname",
    ),
    (
        "naive instant",
        "put",
        "/v1/tasks/t2",
        {**TASK, "due_at": "2026-03-02T12:00:00"},
        422,
        "due_at",
    ),
    (
        "bad zone",
        "put",
        "/v1/recipients/u2",
        {"email": "b@example.com", "timezone": "Mars/Base"},
        422,
        "timezone",
    ),
    ("NUL in a name", "put", "/v1/workspaces/w2", {"name": "a\x00b"}, 422, "name"),
    (
        "NUL in a schedule",
        "post",
        "/v1/rules",
        {**RULE, "id": "r9", "schedule": {"kind": "relative", "offset": "-PT30M\x00"}},
        422,
        "schedule",
    ),
    ("bad email", "put", "/v1/recipients/u2", {"email": "not an address"}, 422, "email"),
    (
        "bad quiet hours",
        "put",
        "/v1/recipients/u2",
        {"email": "b@example.com", "quiet_hours": {"start": "25:00", "end": "07:00"}},
        422,
        "quiet_hours.start",
    ),
    (
        "unknown workspace",
        "put",
        "/v1/tasks/t2",
        {**TASK, "workspace_id": "nope"},
        422,
        "workspace_id",
    ),
    (
        "bad RRULE",
        "post",
        "/v1/rules",
        {
            **RULE,
            "id": "r9",
            "schedule": {
                "kind": "recurring",
                "rrule": "FREQ=SOMETIMES",
                "start": "2026-03-02T09:00",
            },
        },
        422,
        "schedule.rrule",
    ),
    (
        "naive schedule instant",
        "post",
        "/v1/rules",
        {**RULE, "id": "r9", "schedule": {"kind": "once", "at": "2026-03-08T09:00:00"}},
        422,
        "schedule.at",
    ),
    (
        "unknown recipient",
        "post",
        "/v1/rules",
        {**RULE, "id": "r9", "recipient_id": "ghost"},
        422,
        "recipient_id",
    ),
    ("unknown task", "post", "/v1/rules", {**RULE, "id": "r9", "task_id": "ghost"}, 422, "task_id"),
    ("unknown topic", "post", "/v1/rules", {**RULE, "id": "r9", "topic": "spam"}, 422, "topic"),
    (
        "unknown rule field",
        "post",
        "/v1/rules",
        {**RULE, "id": "r9", "priority": 1},
        422,
        "priority",
    ),
    ("not JSON", "post", "/v1/rules", "{", 422, None),
    ("unknown rule", "get", "/v1/rules/ghost", None, 404, None),
    ("unknown task to read", "get", "/v1/tasks/ghost", None, 404, None),
    ("unknown recipient to read", "get", "/v1/recipients/ghost", None, 404, None),
    ("unknown recipient's rules", "get", "/v1/recipients/ghost/rules", None, 404, None),
    ("unknown rule to patch", "patch", "/v1/rules/ghost", {"active": False}, 404, None),
    ("unknown rule to delete", "delete", "/v1/rules/ghost", None, 404, None),
    ("unknown recipient's preferences", "get", "/v1/recipients/ghost/preferences", None, 404, None),
    ("bad cursor", "get", "/v1/recipients/u1/rules?cursor=%%%", None, 422, "cursor"),
    ("limit too large", "get", "/v1/recipients/u1/rules?limit=100000", None, 422, "limit"),
    (
        "naive explain from",
        "get",
        "/v1/recipients/u1/explain?from=2026-03-02T00:00:00&to=2026-03-03T00:00:00Z",
        None,
        422,
        "from",
    ),
    (
        "instant before year 1 in UTC",
        "put",
        "/v1/tasks/t2",
        {**TASK, "due_at": "0001-01-01T00:00:00+01:00"},
        422,
        "due_at",
    ),
    (
        "schedule instant before year 1 in UTC",
        "post",
        "/v1/rules",
        {**RULE, "id": "r9", "schedule": {"kind": "once", "at": "0001-01-01T00:00:00+01:00"}},
        422,
        "schedule.at",
    ),
    (
        "explain from before year 1 in UTC",
        "get",
        "/v1/recipients/u1/explain?from=0001-01-01T00:09:01%2B00:36&to=0212-01-17T00:00:00Z",
        None,
        422,
        "from",
    ),
    (
        "explain backwards",
        "get",
        "/v1/recipients/u1/explain?from=2026-03-03T00:00:00Z&to=2026-03-02T00:00:00Z",
        None,
        422,
        "to",
    ),
    ("id too long", "get", "/v1/rules/" + "x" * 65, None, 422, "rule_id"),
]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [pytest.param(*case[1:], id=case[0]) for case in BAD_INPUTS],
)
def test_bad_input_is_a_precise_problem_and_writes_nothing(
    api: LiveApi,
    http: httpx.Client,
    method: str,
    path: str,
    body: Any,
    status: int,
    field: str | None,
) -> None:
    register(http)
    http.post("/v1/rules", json=RULE)
    before = table_counts(api)
    if isinstance(body, str):
        response = http.request(
            method, path, content=body, headers={"content-type": "application/json"}
        )
    else:
        response = http.request(method, path, json=body)
    assert_problem(response, status, field)
    assert table_counts(api) == before


def test_keys_missing_wrong_and_wrong_scope(api: LiveApi) -> None:
    with api.client(None) as anonymous:
        missing = anonymous.get("/v1/rules/r1")
    assert_problem(missing, 401)
    assert missing.headers["www-authenticate"] == "Bearer"
    with api.client("tp_abc_wrong") as wrong:
        assert_problem(wrong.get("/v1/rules/r1"), 401)
    with api.client("ops") as operator:
        assert_problem(operator.put("/v1/workspaces/w1", json={"name": "x"}), 403)
    assert table_counts(api)["workspace"] == 0
    for open_path in ("/healthz", "/readyz", "/metrics"):
        assert httpx.get(api.base_url + open_path).status_code == 200


def test_body_over_the_limit_is_413(api: LiveApi, http: httpx.Client) -> None:
    big = {"name": "x" * 5000}
    declared = http.put("/v1/workspaces/w1", json=big)
    assert_problem(declared, 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        yield b'{"name": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    chunked = http.put(
        "/v1/workspaces/w1", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(chunked, 413)
    assert table_counts(api)["workspace"] == 0
    assert http.put("/v1/workspaces/w1", json={"name": "fits"}).status_code == 200


def test_openapi_documents_every_error(api: LiveApi) -> None:
    schema = httpx.get(api.base_url + "/openapi.json").json()
    for path, operations in schema["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert {"401", "403", "413", "422"} <= codes, (method, path)
            assert operation.get("security"), (method, path)


def test_readyz_is_503_on_an_unmigrated_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    database = Database("sqlite", url, None, make_engine(url))
    app = build_app(settings_for(database, tmp_path), engine=database.engine)
    with serve(app) as base_url:
        response = httpx.get(base_url + "/readyz")
    assert_problem(response, 503)
    database.engine.dispose()


def test_database_down_is_a_retryable_503(tmp_path: Path) -> None:

    url = "postgresql+psycopg://nobody@127.0.0.1:1/nothing"  # nothing listens on port 1
    database = Database("postgresql", url, None, make_engine(url))
    app = build_app(settings_for(database, tmp_path), engine=database.engine)
    with serve(app) as base_url:
        headers = {"Authorization": "Bearer tp_abc_secret"}
        api_call = httpx.get(base_url + "/v1/rules/r1", headers=headers)
        ready = httpx.get(base_url + "/readyz")
        metrics = httpx.get(base_url + "/metrics")
    assert_problem(api_call, 503)
    assert api_call.headers["retry-after"] == "5"
    assert "127.0.0.1" not in api_call.text
    assert_problem(ready, 503)
    assert "reminders_database_up 0.0" in metrics.text
    database.engine.dispose()


def table_counts(api: LiveApi) -> dict[str, int]:
    names = [
        "recipient",
        "workspace",
        "task",
        "reminder_rule",
        "occurrence",
        "message",
        "preference",
        "suppression",
    ]
    with api.app.engine.connect() as connection:
        return {
            name: connection.execute(select(func.count()).select_from(text(name))).scalar_one()
            for name in names
        }
