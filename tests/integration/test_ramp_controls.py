"""Operator controls of the ramp: ``reminders ramp ...`` and ``/ops/ramp``."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("scheduler.app")  # the composition root needs every delivery module

from fastapi.testclient import TestClient

from scheduler.app import App
from scheduler.cli import main
from scheduler.web import problems
from scheduler.web.app import create_web_app
from tests.conftest import TEST_SIGNING_KEY, Database

NOW = datetime(2025, 3, 10, 9, 0, 0, tzinfo=UTC)


# --- CLI ---------------------------------------------------------------------------------


@pytest.fixture
def reminders(
    db: Database,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Any:
    """Run ``reminders ARGS`` in-process against ``db``: (exit code, stdout, stderr)."""
    for name, value in db.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REMINDERS_SIGNING_KEYS", TEST_SIGNING_KEY)
    monkeypatch.setenv("REMINDERS_OUTBOX_DIR", str(tmp_path / "outbox"))

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["reminders", *args])
        with pytest.raises(SystemExit) as exited:
            main()
        out, err = capsys.readouterr()
        return int(exited.value.code or 0), out, err

    return run


def test_ramp_show_prints_the_table(reminders: Any) -> None:
    code, out, _ = reminders("ramp", "show")
    assert code == 0
    assert "mode        auto" in out
    assert "limit       200/day at 1/s (step 1 of 12)" in out
    header = next(line for line in out.splitlines() if line.startswith("day "))
    assert header.split() == [
        "day",
        "granted",
        "sent",
        "delivered",
        "bounced",
        "complaints",
        "bounce",
        "complaint",
    ]
    assert "next        auto at 200/day" in out


def test_ramp_set_then_show_history_lists_the_change(reminders: Any) -> None:
    code, out, _ = reminders("ramp", "set", "--daily", "1000", "--rate", "2", "--reason", "launch")
    assert (code, out.strip()) == (0, "manual at 1,000/day, 2/s: launch")
    code, out, _ = reminders("ramp", "show", "--history")
    assert code == 0
    assert "mode daily_limit" not in out
    history = out.split("when (UTC)")[1]
    assert "cli:" in history
    assert "mode auto -> manual, daily_limit 200 -> 1000" in history
    assert "; launch" in history


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("set", "--daily", "-1", "--reason", "x"), "error: --daily: must be 0 or more, got -1"),
        (("set", "--daily", "10"), "error: --reason: say why: every ramp change is audited"),
        (("set", "--reason", "x"), "error: --daily: required"),
        (("pause",), "error: --reason: say why: every ramp change is audited"),
        (("resume", "--reason", "x"), "error: the stream is auto, not paused: nothing to resume"),
    ],
)
def test_bad_input_is_one_stderr_line_and_exit_2(
    reminders: Any, args: tuple[str, ...], message: str
) -> None:
    code, out, err = reminders("ramp", *args)
    assert (code, out, err) == (2, "", message + "\n")


# --- HTTP --------------------------------------------------------------------------------


@pytest.fixture
def app(make_app: Any) -> App:
    built: App = make_app(NOW, open_ramp=False)
    return built


@pytest.fixture
def client(app: App) -> TestClient:
    web = create_web_app(app)
    problems.install(web)  # idempotent; create_web_app installs it once the API lands
    return TestClient(web)


def bearer(app: App, *scopes: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {app.keys.create(set(scopes), now=NOW)}"}


def test_ops_ramp_needs_an_ops_key(app: App, client: TestClient) -> None:
    anonymous = client.get("/ops/ramp")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert client.get("/ops/ramp", headers=bearer(app, "rules")).status_code == 403
    assert (
        client.post(
            "/ops/ramp/pause", json={"reason": "x"}, headers=bearer(app, "rules")
        ).status_code
        == 403
    )
    shown = client.get("/ops/ramp", headers=bearer(app, "ops"))
    assert shown.status_code == 200
    body = shown.json()
    assert (body["mode"], body["daily_limit"], body["used_today"]) == ("auto", 200, 0)
    assert body["history"][0]["actor"] == "system"


def test_ops_ramp_changes_are_audited_under_the_key(app: App, client: TestClient) -> None:
    ops = bearer(app, "ops")
    key_id = ops["Authorization"].split("_")[1]
    put = client.put("/ops/ramp", json={"daily_limit": 2000, "reason": "week 2"}, headers=ops)
    assert put.status_code == 200
    assert put.json() == {
        "mode": "manual",
        "daily_limit": 2000,
        "rate_per_second": 1.0,
        "step": 3,
        "reason": "week 2",
    }
    assert client.post("/ops/ramp/pause", json={"reason": "spike"}, headers=ops).json()["mode"] == (
        "paused"
    )
    assert client.post("/ops/ramp/resume", json={"reason": "ok"}, headers=ops).json()["mode"] == (
        "manual"
    )
    assert client.post("/ops/ramp/auto", json={"reason": "policy"}, headers=ops).json()["mode"] == (
        "auto"
    )
    history = client.get("/ops/ramp", params={"history": 4}, headers=ops).json()["history"]
    assert [h["reason"] for h in history] == ["policy", "ok", "spike", "week 2"]
    assert {h["actor"] for h in history} == {f"key:{key_id}"}


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("PUT", "/ops/ramp", {"daily_limit": -1, "reason": "x"}, "daily_limit"),
        (
            "PUT",
            "/ops/ramp",
            {"daily_limit": 5, "rate_per_second": 0, "reason": "x"},
            "rate_per_second",
        ),
        ("PUT", "/ops/ramp", {"daily_limit": 5, "reason": "x", "extra": 1}, "extra"),
        ("PUT", "/ops/ramp", {"daily_limit": 5, "reason": "   "}, "reason"),
        ("POST", "/ops/ramp/pause", {}, "reason"),
    ],
)
def test_bad_input_is_422_problem_json_naming_the_field(
    app: App, client: TestClient, method: str, path: str, body: dict[str, Any], field: str
) -> None:
    response = client.request(method, path, json=body, headers=bearer(app, "ops"))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field


def test_resume_when_not_paused_is_409(app: App, client: TestClient) -> None:
    response = client.post("/ops/ramp/resume", json={"reason": "x"}, headers=bearer(app, "ops"))
    assert response.status_code == 409
