"""Bad configuration fails with one clear line, before anything is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from scheduler.config import load_settings
from scheduler.errors import ConfigurationError


def test_defaults_are_the_embedded_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("REMINDERS_"):
            monkeypatch.delenv(name)
    settings = load_settings()
    assert settings.database_url == "sqlite:///./var/reminders.db"
    assert settings.sender == "outbox"
    assert settings.outbox_dir == Path("var/outbox")
    assert settings.base_url == "http://127.0.0.1:8000"
    assert settings.ses_configuration_set == "timeplan-transactional"
    assert settings.batch_window_seconds == 60


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("REMINDERS_SENDER", "smtp", "REMINDERS_SENDER: Input should be 'outbox' or 'ses'"),
        ("REMINDERS_DATABASE_URL", "mysql://h/db", "unsupported database 'mysql'"),
        ("REMINDERS_DATABASE_URL", "::nonsense", "malformed database URL"),
        ("REMINDERS_BATCH_WINDOW_SECONDS", "-1", "REMINDERS_BATCH_WINDOW_SECONDS"),
    ],
)
def test_bad_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(")):
        load_settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [("REMINDERS_SENDER", "carrier-pigeon"), ("REMINDERS_DATABASE_URL", "not a url")],
)
def test_cli_refuses_bad_configuration_before_writing(
    tmp_path: Path, name: str, value: str
) -> None:
    env = {**os.environ, name: value}
    result = subprocess.run(
        [sys.executable, "-m", "scheduler", "db", "upgrade"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: REMINDERS_")
    assert not (tmp_path / "var").exists()
