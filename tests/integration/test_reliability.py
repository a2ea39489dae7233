"""Reliability of the worker with real processes on PostgreSQL (issue 7).

Each test seeds due one-off reminders in bulk, starts ``worker_runner`` processes (the
real :class:`Worker` with a 0.2 s tick, a 5 s lease and a recording sender that appends
one line per hand-off to a shared log), injects a fault, and waits for the database to
say every message was sent. The log then tells how often each message went out.

Sizes: the four-worker drain uses the issue's 20,000 reminders (about 40 s on this
2-core box); the fault tests use 1,000-2,000 so the module stays around a minute and a
half. ``bench/e2e.py`` drains more.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from scheduler.delivery.send import FINISH_EVERY
from scheduler.worker import acquire_sqlite_lock
from tests.conftest import TEST_SIGNING_KEY, Database
from tests.integration.reliability_support import (
    ROOT,
    Workers,
    duplicate_occurrences,
    messages_sent,
    open_ramp,
    scalar,
    seed_due_reminders,
    steady,
    wait_until,
    worker_id,
)

pytestmark = pytest.mark.slow

DRAIN = 60.0  # seconds any one drain may take before the test fails


@pytest.fixture
def workers(pg: Database, tmp_path: Path) -> Iterator[Workers]:
    group = Workers(pg, tmp_path)
    yield group
    group.kill_all()  # only what a failed test left running


def assert_each_sent(group: Workers, count: int) -> int:
    """Every message went out at least once; returns how many hand-offs repeated."""
    engine = group.db.engine
    assert messages_sent(engine) == count
    assert scalar(engine, "SELECT count(*) FROM occurrence WHERE status = 'sent'") == count
    assert duplicate_occurrences(engine) == 0  # (rule_id, fire_at) fired once each
    sends = group.sends()
    refs = {r for (r,) in _rows(group.db, "SELECT 'm' || id FROM message")}
    assert {ref.split(".")[0] for ref in sends} == refs
    return sum(sends.values()) - len(sends)


def _rows(db: Database, sql: str) -> list[tuple[str]]:
    with db.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(text(sql))]


def sending_leased_by(db: Database, holder: str) -> int:
    return scalar(
        db.engine,
        "SELECT count(*) FROM message WHERE status = 'sending' AND leased_by = :holder",
        holder=holder,
    )


def test_four_workers_send_every_reminder_exactly_once(pg: Database, workers: Workers) -> None:
    count = 20_000  # the size; ~35-45 s on this 2-core box
    seed_due_reminders(pg.engine, count)
    open_ramp(pg.engine)
    workers.start(4)
    took = wait_until(lambda: messages_sent(pg.engine) == count, timeout=4 * DRAIN, what="drain")
    assert workers.stop_all() == [0, 0, 0, 0]
    assert assert_each_sent(workers, count) == 0
    print(f"4 workers drained {count} reminders in {took:.1f} s ({count / took:.0f}/s)")


def test_a_killed_worker_repeats_at_most_its_sends_in_flight(
    pg: Database, workers: Workers
) -> None:
    count = 2_000
    seed_due_reminders(pg.engine, count)
    open_ramp(pg.engine)
    victim, survivor = workers.start(2)
    wait_until(lambda: len(workers.sends()) >= 300, timeout=DRAIN, what="sending to start")
    # Frozen first, so what it holds cannot change between counting and the kill.
    victim.send_signal(signal.SIGSTOP)
    in_flight = sending_leased_by(pg, worker_id(victim))
    victim.kill()
    victim.wait()
    wait_until(lambda: messages_sent(pg.engine) == count, timeout=DRAIN, what="the survivor")
    assert survivor.poll() is None
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(timeout=10) == 0
    duplicates = assert_each_sent(workers, count)
    print(f"SIGKILL: {in_flight} message(s) in flight, {duplicates} sent twice")
    assert duplicates <= in_flight


def test_workers_reconnect_after_their_connections_are_terminated(
    pg: Database, workers: Workers
) -> None:
    count = 2_000
    seed_due_reminders(pg.engine, count)
    open_ramp(pg.engine)
    workers.start(2)
    terminated = 0
    for threshold in (200, 900):
        wait_until(lambda n=threshold: len(workers.sends()) >= n, timeout=DRAIN, what="sends")
        terminated += scalar(
            pg.engine,
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = :name) AS t",
            name=workers.app_name,
        )
    assert terminated >= 2  # each worker lost at least one connection
    wait_until(lambda: messages_sent(pg.engine) == count, timeout=DRAIN, what="recovery")
    assert all(p.poll() is None for p in workers.processes)
    assert workers.stop_all() == [0, 0]
    duplicates = assert_each_sent(workers, count)
    print(f"pg_terminate_backend: {terminated} sessions ended, {duplicates} sent twice")
    # A hand-off recorded in a group that died with its connection goes again.
    assert duplicates <= 2 * 2 * (FINISH_EVERY + 1)


def test_throttling_and_a_paused_account_lose_nothing(pg: Database, workers: Workers) -> None:
    count = 1_000
    seed_due_reminders(pg.engine, count)
    open_ramp(pg.engine)
    # A burst of throttling in both workers; SES pauses the account under one of them.
    workers.start(1, RUNNER_THROTTLE="40:30", RUNNER_PAUSE_AT="150")
    workers.start(1, RUNNER_THROTTLE="60:30")
    mode = "SELECT mode FROM ramp WHERE stream = 'transactional'"
    with pg.engine.connect() as conn:
        assert conn.execute(text(mode)).scalar_one() == "manual"
    wait_until(lambda: _mode(pg) == "paused", timeout=DRAIN, what="the stream to pause")
    # Batches granted before the pause finish; after that nothing more goes out.
    wait_until(lambda: sending_total(pg) == 0, timeout=DRAIN, what="batches in hand")
    held = messages_sent(pg.engine)
    assert held < count
    steady(lambda: messages_sent(pg.engine), held, seconds=1.0)  # five ticks, nothing sent
    resumed = subprocess.run(
        [sys.executable, "-m", "scheduler", "ramp", "resume", "--reason", "SES lifted the pause"],
        cwd=ROOT,
        env=workers.env({}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert _mode(pg) == "manual"
    wait_until(lambda: messages_sent(pg.engine) == count, timeout=DRAIN, what="the backlog")
    assert workers.stop_all() == [0, 0]
    assert assert_each_sent(workers, count) == 0
    retried = scalar(pg.engine, "SELECT count(*) FROM message WHERE attempts > 1")
    assert retried >= 30  # the throttled ones went again, and arrived


def _mode(pg: Database) -> str:
    with pg.engine.connect() as conn:
        return str(conn.execute(text("SELECT mode FROM ramp")).scalar_one())


def sending_total(pg: Database) -> int:
    return scalar(pg.engine, "SELECT count(*) FROM message WHERE status = 'sending'")


def test_sigterm_exits_promptly_and_leaves_no_lease(pg: Database, workers: Workers) -> None:
    count = 1_000
    seed_due_reminders(pg.engine, count)
    open_ramp(pg.engine)
    (worker,) = workers.start(1)
    wait_until(lambda: len(workers.sends()) >= 100, timeout=DRAIN, what="sending to start")
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0
    took = time.monotonic() - started
    assert took < 5.0, f"took {took:.1f} s to stop"
    assert sending_leased_by(pg, worker_id(worker)) == 0
    assert messages_sent(pg.engine) < count  # it really stopped mid-run
    # What it gave back is sent by the next worker at once (no lease to wait out).
    workers.start(1)
    wait_until(lambda: messages_sent(pg.engine) == count, timeout=DRAIN, what="the rest")
    assert workers.stop_all()[-1] == 0
    assert assert_each_sent(workers, count) == 0


@pytest.mark.parametrize("command", ["worker", "run"])
def test_a_second_worker_on_one_sqlite_file_refuses_to_start(tmp_path: Path, command: str) -> None:
    url = f"sqlite:///{tmp_path}/reminders.db"
    lock = acquire_sqlite_lock(url)  # the first worker
    assert lock is not None
    try:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "REMINDERS_DATABASE_URL": url,
            "REMINDERS_SIGNING_KEYS": TEST_SIGNING_KEY,
            "REMINDERS_OUTBOX_DIR": str(tmp_path / "outbox"),
        }
        second = subprocess.run(
            [sys.executable, "-m", "scheduler", command, "--port", "1"]
            if command == "run"
            else [sys.executable, "-m", "scheduler", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        lock.close()
    assert second.returncode != 0
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert "another worker already runs" in lines[0]


def test_reminders_run_stops_web_and_worker_on_sigterm(tmp_path: Path) -> None:
    """The embedded default: SIGTERM right after it says it serves (uvicorn may still be
    starting) stops both the server and the worker, and the process exits 0."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "REMINDERS_DATABASE_URL": f"sqlite:///{tmp_path}/reminders.db",
        "REMINDERS_SIGNING_KEYS": TEST_SIGNING_KEY,
        "REMINDERS_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "scheduler", "run", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        while "serving on" not in (line := process.stdout.readline()):
            assert line, "exited before serving"
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 5.0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
