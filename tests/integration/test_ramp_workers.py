"""Four worker processes granting concurrently on PostgreSQL never exceed the limits.

Each process has its own engine and connections, as real workers do; they start together
behind a barrier and ask for small random batches until the ramp grants them nothing.
With demand far above the limit, the grants must sum to the limit exactly: no more (the
database refused the excess) and no less (no grant was lost in a race).
"""

from __future__ import annotations

import multiprocessing
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from scheduler.db import make_engine, session_factory, transaction
from scheduler.delivery.ramp import RampStore
from scheduler.delivery.ramp_policy import RampConfig
from scheduler.tables import Ramp, SendDay
from tests.conftest import Database

NOW = datetime(2025, 3, 10, 9, 0, 0, tzinfo=UTC)
WORKERS = 4


def grant_until_refused(url: str, schema: str, seed: int, barrier: Any, results: Any) -> None:
    """One worker: grant small batches in a loop, all within the same second."""
    engine = make_engine(url, schema=schema)
    store = RampStore(session_factory(engine), RampConfig())
    rand = random.Random(seed)
    granted = calls = 0
    barrier.wait()
    while True:
        with transaction(store._sessions) as session:
            got = store.grant(session, rand.randint(1, 7), NOW)
        calls += 1
        if got == 0:
            break
        granted += got
    results.put((granted, calls))
    engine.dispose()


def run_workers(pg: Database) -> list[tuple[int, int]]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    results = context.Queue()
    processes = [
        context.Process(
            target=grant_until_refused, args=(pg.url, pg.schema, seed, barrier, results)
        )
        for seed in range(WORKERS)
    ]
    for process in processes:
        process.start()
    outcome = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    return outcome


@pytest.mark.slow
@pytest.mark.parametrize(("daily", "rate", "expected"), [(500, 10_000, 500), (10_000, 60, 60)])
def test_four_processes_never_exceed_the_limit(
    pg: Database, daily: int, rate: float, expected: int
) -> None:
    """First the daily limit binds, then the per-second rate (every grant in one second)."""
    store = RampStore(session_factory(pg.engine), RampConfig())
    store.set_manual(daily, rate, "concurrency test", "test", NOW - timedelta(hours=1))
    outcome = run_workers(pg)
    assert sum(granted for granted, _ in outcome) == expected
    assert sum(calls for _, calls in outcome) > WORKERS  # they asked more than once each
    with pg.engine.connect() as conn:
        counted = conn.execute(select(SendDay.granted)).scalar_one()
        in_second = conn.execute(select(Ramp.second_count)).scalar_one()
    assert counted == expected
    assert in_second == expected
