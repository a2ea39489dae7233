"""Helpers for the multi-process reliability tests: bulk seeding, worker processes, counts.

Workers are real processes (``tests/integration/worker_runner.py``) on the real clock, so
the reminders are seeded due a moment ago and the parent waits, with a deadline, for
the database to say every one went out.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, text

from scheduler.db import session_factory
from scheduler.delivery.ramp import RampStore
from scheduler.delivery.ramp_policy import RampConfig
from tests.conftest import TEST_SIGNING_KEY, Database

ROOT = Path(__file__).resolve().parents[2]
POLL = 0.1  # how often the parent looks at the database while workers run


def seed_due_reminders(engine: Engine, count: int, *, due: datetime | None = None) -> datetime:
    """``count`` recipients with one one-off task reminder each, all due at ``due``.

    Plain SQL with ``generate_series``: the API would take minutes for thousands of rows.
    """
    now = datetime.now(UTC)
    at = due or now - timedelta(seconds=1)
    schedule = json.dumps({"kind": "once", "at": at.isoformat().replace("+00:00", "Z")})
    values = {"now": now, "at": at, "n": count, "schedule": schedule, "due": at + timedelta(days=1)}
    series, schedule_sql = "generate_series(1, :n) AS g", "CAST(:schedule AS json)"
    if engine.dialect.name == "sqlite":
        # SQLite stores UTC instants naive (db.UTCDateTime) and has no generate_series.
        values = {
            k: v.replace(tzinfo=None) if isinstance(v, datetime) else v for k, v in values.items()
        }
        schedule_sql = ":schedule"  # CAST AS json would give NUMERIC affinity: 0
        series = (
            "(WITH RECURSIVE s(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM s WHERE g < :n) "
            "SELECT g FROM s)"
        )
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO workspace (id, name, updated_at) VALUES ('w1', 'Launch', :now)"),
            values,
        )
        conn.execute(
            text(
                "INSERT INTO task (id, workspace_id, title, url, due_at, status, updated_at) "
                "VALUES ('t1', 'w1', 'Ship the release', 'https://example.com/t/1', :due, "
                "'open', :now)"
            ),
            values,
        )
        conn.execute(
            text(
                "INSERT INTO recipient (id, email, timezone, locale, status, created_at, "
                "updated_at) SELECT 'r' || g, 'r' || g || '@example.com', 'UTC', 'en', "
                f"'active', :now, :now FROM {series}"
            ),
            values,
        )
        conn.execute(
            text(
                "INSERT INTO reminder_rule (id, recipient_id, task_id, topic, schedule, active, "
                "next_fire_at, version, created_at, updated_at) SELECT 'rule' || g, 'r' || g, "
                f"'t1', 'task-reminder', {schedule_sql}, true, :at, 1, :now, :now "
                f"FROM {series}"
            ),
            values,
        )
    return at


def open_ramp(engine: Engine) -> RampStore:
    store = RampStore(session_factory(engine), RampConfig())
    store.set_manual(10_000_000, 10_000.0, "tests", "test", datetime.now(UTC))
    return store


@dataclass
class Workers:
    """Worker processes sharing one send log."""

    db: Database
    tmp: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def send_log(self) -> Path:
        return self.tmp / "sends.log"

    def env(self, overrides: dict[str, str]) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "REMINDERS_SIGNING_KEYS": TEST_SIGNING_KEY,
            "REMINDERS_OUTBOX_DIR": str(self.tmp / "outbox"),
            "REMINDERS_BATCH_WINDOW_SECONDS": "0",
            "REMINDERS_LEASE_SECONDS": "5",
            "RUNNER_SEND_LOG": str(self.send_log),
            "RUNNER_INTERVAL": "0.2",
            "PGAPPNAME": self.app_name,
            **self.db.env(),
            **self.extra_env,
            **overrides,
        }

    @property
    def app_name(self) -> str:
        """The workers' ``application_name`` (libpq's PGAPPNAME), to find their sessions."""
        return f"reliability-{self.db.schema}"

    def start(self, count: int = 1, **overrides: str) -> list[subprocess.Popen[str]]:
        started = []
        for _ in range(count):
            # stderr to a file: a pipe nobody reads would fill up and block the worker.
            log = (self.tmp / f"worker-{len(self.processes) + len(started)}.err").open("w")
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "tests.integration.worker_runner"],
                    cwd=ROOT,
                    env=self.env(overrides),
                    stdout=subprocess.PIPE,
                    stderr=log,
                    text=True,
                )
            )
            log.close()
        for process in started:
            line = process.stdout.readline() if process.stdout else ""
            assert line.startswith("started"), _failure(process, line)
        self.processes.extend(started)
        return started

    def stop_all(self, timeout: float = 10.0) -> list[int]:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        codes = [process.wait(timeout=timeout) for process in self.processes]
        for process in self.processes:
            if process.stdout:
                process.stdout.close()
        return codes

    def stderr(self) -> str:
        return "\n".join(p.read_text() for p in sorted(self.tmp.glob("worker-*.err")))

    def kill_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout:
                process.stdout.close()

    def sends(self) -> Counter[str]:
        if not self.send_log.exists():
            return Counter()
        return Counter(line.split()[0] for line in self.send_log.read_text().splitlines())


def worker_id(process: subprocess.Popen[str]) -> str:
    import socket

    return f"{socket.gethostname()}:{process.pid}"


def _failure(process: subprocess.Popen[str], line: str) -> str:
    process.kill()
    process.wait(timeout=10)
    return f"worker did not start: {line!r} (see its worker-N.err)"


def wait_until(done: Callable[[], bool], *, timeout: float, what: str) -> float:
    """Poll ``done`` until it holds; the seconds it took. Fails after ``timeout``."""
    started = time.monotonic()
    while not done():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(POLL)
    return time.monotonic() - started


def steady(read: Callable[[], int], value: int, *, seconds: float) -> None:
    """``read()`` keeps returning ``value`` for ``seconds`` (nothing moves meanwhile)."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        assert read() == value
        time.sleep(POLL)


def scalar(engine: Engine, sql: str, **params: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def messages_sent(engine: Engine) -> int:
    return scalar(engine, "SELECT count(*) FROM message WHERE status = 'sent'")


def duplicate_occurrences(engine: Engine) -> int:
    return scalar(
        engine,
        "SELECT count(*) FROM (SELECT rule_id, fire_at FROM occurrence "
        "GROUP BY rule_id, fire_at HAVING count(*) > 1) AS d",
    )
