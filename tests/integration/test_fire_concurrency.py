"""Many fire workers on one rule table: every (rule, instant) fires exactly once.

Four worker processes (spawned, each building the real app from the environment as
``reminders worker`` does) fire thousands of due rules on PostgreSQL at the same time,
in two phases separated by a barrier. Recurring rules have several missed instants in
the first phase, so coalescing runs under contention too. The unique (rule_id, fire_at)
key would reject a duplicate insert silently (ON CONFLICT DO NOTHING), so the test also
counts: claims per phase equal the rules due (no rule claimed twice), and the stored
occurrences equal the expected set computed independently with zoneinfo.

On SQLite there are no row locks, so a second worker refuses to start.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, select

from scheduler.errors import ConfigurationError
from scheduler.tables import Occurrence, Recipient, ReminderRule, Workspace
from scheduler.worker import acquire_sqlite_lock
from tests.conftest import TEST_SIGNING_KEY, Database

WORKERS = 4
RECURRING = 2_400  # a third of them COUNT=2
ONCE = 1_600
PHASES = (datetime(2026, 3, 4, 0, 0, tzinfo=UTC), datetime(2026, 3, 5, 0, 0, tzinfo=UTC))
CREATED = datetime(2026, 2, 28, 12, 0, tzinfo=UTC)
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata")  # no DST change 03-01..05


# --- the workers --------------------------------------------------------------------------


def fire_worker(env: dict[str, str], barrier: Any, results: Any, worker: int) -> None:
    """One process: build the app from the environment, fire each phase until dry."""
    os.environ.update(env)
    from scheduler.app import build_app

    app = build_app(worker_id=f"fire-{worker}")
    try:
        for phase, now in enumerate(PHASES):
            barrier.wait(timeout=120)
            claimed = fired = coalesced = 0
            while True:
                report = app.pipeline.fire(now)
                claimed += report.claimed
                fired += report.fired
                coalesced += report.coalesced
                if report.claimed == 0:
                    break
            results.put((worker, phase, claimed, fired, coalesced))
    finally:
        app.close()


def run_workers(env: dict[str, str]) -> list[tuple[int, int, int, int, int]]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    results = context.Queue()
    processes = [
        context.Process(target=fire_worker, args=(env, barrier, results, n)) for n in range(WORKERS)
    ]
    for process in processes:
        process.start()
    outcome = [results.get(timeout=180) for _ in range(WORKERS * len(PHASES))]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return outcome


# --- the rules, inserted in bulk, and what they must produce -------------------------------


def local(zone: str, day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def recurring_rule(
    n: int,
) -> tuple[dict[str, Any], list[tuple[str, datetime, int]], datetime | None]:
    """Daily from 03-01 at a spread wall time; returns row, expected occurrences, next."""
    zone, hour, minute = ZONES[n % len(ZONES)], n % 24, (n * 7) % 60
    counted = n % 3 == 0
    rrule = "FREQ=DAILY;COUNT=2" if counted else "FREQ=DAILY"
    rule_id = f"rec-{n:05d}"
    row = rule_row(
        rule_id,
        {
            "kind": "recurring",
            "rrule": rrule,
            "start": f"2026-03-01T{hour:02d}:{minute:02d}",
            "timezone": zone,
        },
        local(zone, 1, hour, minute),
    )
    instants = [local(zone, day, hour, minute) for day in range(1, 6)]
    if counted:
        instants = instants[:2]
    expected, following = [], None
    for now in PHASES:
        due = [i for i in instants if i <= now]
        if due:
            expected.append((rule_id, due[-1], len(due) - 1))
        instants = [i for i in instants if i > now]
    following = instants[0] if instants else None
    return row, expected, following


def once_rule(n: int) -> tuple[dict[str, Any], list[tuple[str, datetime, int]], datetime | None]:
    at = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(minutes=n * 5 % (4 * 24 * 60 - 5))
    rule_id = f"once-{n:05d}"
    row = rule_row(rule_id, {"kind": "once", "at": at.isoformat().replace("+00:00", "Z")}, at)
    return row, [(rule_id, at, 0)], None


def rule_row(rule_id: str, schedule: dict[str, Any], next_fire_at: datetime) -> dict[str, Any]:
    return {
        "id": rule_id,
        "recipient_id": "r1",
        "workspace_id": "w1",
        "topic": "task-reminder",
        "schedule": schedule,
        "active": True,
        "next_fire_at": next_fire_at,
        "version": 1,
        "created_at": CREATED,
        "updated_at": CREATED,
    }


def seed(
    pg: Database,
) -> tuple[set[tuple[str, datetime, int]], dict[str, datetime | None], list[int]]:
    built = [recurring_rule(n) for n in range(RECURRING)] + [once_rule(n) for n in range(ONCE)]
    with pg.engine.begin() as conn:
        conn.execute(
            insert(Recipient),
            [
                {
                    "id": "r1",
                    "email": "r1@example.com",
                    "timezone": "UTC",
                    "created_at": CREATED,
                    "updated_at": CREATED,
                }
            ],
        )
        conn.execute(insert(Workspace), [{"id": "w1", "name": "Load", "updated_at": CREATED}])
        conn.execute(insert(ReminderRule), [row for row, _, _ in built])
    expected = {occ for _, occs, _ in built for occ in occs}
    following = {row["id"]: nxt for row, _, nxt in built}
    due_per_phase = [
        sum(1 for _, occs, _ in built for o in occs if phase_of(o[1]) == p)
        for p in range(len(PHASES))
    ]
    return expected, following, due_per_phase


def phase_of(instant: datetime) -> int:
    return next(p for p, now in enumerate(PHASES) if instant <= now)


@pytest.mark.slow
def test_four_fire_workers_fire_every_instant_exactly_once(pg: Database, tmp_path: Path) -> None:
    expected, following, due_per_phase = seed(pg)
    env = pg.env() | {
        "REMINDERS_SIGNING_KEYS": TEST_SIGNING_KEY,
        "REMINDERS_OUTBOX_DIR": str(tmp_path / "outbox"),
        "REMINDERS_STAGE_BATCH_SIZE": "50",  # many small batches: more interleaving
    }

    outcome = run_workers(env)

    with pg.engine.connect() as conn:
        stored = [
            (r.rule_id, r.fire_at, r.coalesced)
            for r in conn.execute(
                select(Occurrence.rule_id, Occurrence.fire_at, Occurrence.coalesced)
            )
        ]
        advanced = {
            r.id: r.next_fire_at
            for r in conn.execute(select(ReminderRule.id, ReminderRule.next_fire_at))
        }
    assert len(stored) == len(expected)  # no duplicate, none missing
    assert set(stored) == expected
    assert advanced == following
    for phase, due in enumerate(due_per_phase):
        claimed = sum(o[2] for o in outcome if o[1] == phase)
        fired = sum(o[3] for o in outcome if o[1] == phase)
        assert claimed == due, f"phase {phase}: a rule was claimed twice or not at all"
        assert fired == due
    coalesced = sum(o[4] for o in outcome)
    assert coalesced == sum(c for _, _, c in expected) > 0
    busy = {o[0] for o in outcome if o[3] > 0}
    assert len(busy) >= 2, "the workers did not share the table"


# --- SQLite: one worker only ---------------------------------------------------------------


def test_a_second_worker_on_the_same_sqlite_file_refuses_to_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'reminders.db'}"
    first = acquire_sqlite_lock(url)
    assert first is not None
    try:
        with pytest.raises(ConfigurationError, match="another worker already runs"):
            acquire_sqlite_lock(url)
        env = os.environ | {
            "REMINDERS_DATABASE_URL": url,
            "REMINDERS_SIGNING_KEYS": TEST_SIGNING_KEY,
            "REMINDERS_OUTBOX_DIR": str(tmp_path / "outbox"),
        }
        env.pop("REMINDERS_DATABASE_SCHEMA", None)
        done = subprocess.run(
            [sys.executable, "-m", "scheduler", "worker"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=Path(__file__).resolve().parents[2],
        )
    finally:
        first.close()
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "another worker already runs" in lines[0], done.stderr
    assert "@" not in json.dumps(lines)
    # Once the first worker is gone, a new one may start.
    again = acquire_sqlite_lock(url)
    assert again is not None
    again.close()
