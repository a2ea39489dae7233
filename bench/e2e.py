"""End to end: this engine against one APScheduler job per reminder, on one PostgreSQL.

    PYTHONPATH=. python bench/e2e.py [--count 10000] [--fire-count 20000] [--lag-rate 500]

Every scenario gets a fresh schema (``bench_e2e``) on ``REMINDERS_BENCH_POSTGRES_URL``
(default: the test server) and runs in child processes, so peak RSS is each one's own:

1. the FIRE stage alone over ``--fire-count`` due one-off reminders, against APScheduler
   3.11 draining as many no-op date jobs from a ``SQLAlchemyJobStore``;
2. ``--count`` reminders due in the same minute, end to end (fire → decide → batch →
   send to the outbox) by one and by two ``Worker`` processes, against APScheduler jobs
   doing the same send work (token + render + MIME + outbox);
3. peak RSS of one worker draining 2,000 due reminders beside 100,000 and 1,000,000
   stored (future) rules;
4. lag from each reminder's due instant to the sender hand-off, two workers, reminders
   falling due at a steady ``--lag-rate`` per second for ``--lag-seconds``.

A progress bar follows each drain; results go to ``bench/results/e2e.json`` and the lag
plot to ``bench/results/e2e_lag.png``. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SCHEMA = "bench_e2e"
URL = os.environ.get(
    "REMINDERS_BENCH_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)
KEY = "bench-signing-key-0123456789abcdef"
BASE_URL = "https://app.timeplanpush.com"


# --- the database -----------------------------------------------------------------------


def fresh_schema() -> Engine:
    from scheduler import migrations
    from scheduler.db import make_engine

    admin = make_engine(URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}")
    admin.dispose()
    engine = make_engine(URL, schema=SCHEMA)
    migrations.upgrade(engine)
    from scheduler.db import session_factory
    from scheduler.delivery.ramp import RampStore
    from scheduler.delivery.ramp_policy import RampConfig

    RampStore(session_factory(engine), RampConfig()).set_manual(
        10_000_000, 10_000.0, "benchmark", "bench", datetime.now(UTC)
    )
    return engine


def seed(engine: Engine, count: int, *, first: datetime, per_second: float = 0.0) -> None:
    """``count`` recipients with a one-off reminder each: all due at ``first``, or one
    every ``1/per_second`` seconds from it. Rule ids continue after existing rows."""
    step_us = int(1_000_000 / per_second) if per_second else 0
    schedule = json.dumps({"kind": "once", "at": first.isoformat().replace("+00:00", "Z")})
    values = {"n": count, "t0": first, "step": step_us, "schedule": schedule, "now": first}
    with engine.begin() as conn:
        offset = conn.execute(text("SELECT count(*) FROM reminder_rule")).scalar_one()
        values["off"] = offset
        if offset == 0:
            conn.execute(
                text("INSERT INTO workspace (id, name, updated_at) VALUES ('w1', 'Finance', :now)"),
                values,
            )
            conn.execute(
                text(
                    "INSERT INTO task (id, workspace_id, title, url, due_at, status, updated_at)"
                    " VALUES ('t1', 'w1', 'Prepare the quarterly report', "
                    "'https://example.com/t/1', :now, 'open', :now)"
                ),
                values,
            )
        series = "FROM generate_series(:off + 1, :off + :n) AS g"
        conn.execute(
            text(
                "INSERT INTO recipient (id, email, timezone, locale, status, created_at, "
                "updated_at) SELECT 'r' || g, 'r' || g || '@example.org', 'Europe/Berlin', "
                f"'en', 'active', :now, :now {series}"
            ),
            values,
        )
        conn.execute(
            text(
                "INSERT INTO reminder_rule (id, recipient_id, task_id, topic, schedule, active, "
                "next_fire_at, version, created_at, updated_at) SELECT 'rule' || g, 'r' || g, "
                "'t1', 'task-reminder', CAST(:schedule AS json), true, "
                "CAST(:t0 AS timestamptz) + (g - :off - 1) * :step * interval '1 microsecond', "
                f"1, :now, :now {series}"
            ),
            values,
        )
        conn.exec_driver_sql("ANALYZE")


def count_sql(engine: Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


# --- child processes ----------------------------------------------------------------------


def child(role: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--role", role],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        stdout=subprocess.PIPE,
        text=True,
    )


def worker_env(out: Path) -> dict[str, str]:
    return {
        "REMINDERS_DATABASE_URL": URL,
        "REMINDERS_DATABASE_SCHEMA": SCHEMA,
        "REMINDERS_SIGNING_KEYS": KEY,
        "REMINDERS_OUTBOX_DIR": str(out / "outbox"),
        "REMINDERS_BATCH_WINDOW_SECONDS": "0",
        "BENCH_HANDOFF_LOG": str(out / "handoffs.log"),
    }


def run_worker_role() -> None:
    """A ``Worker`` with the outbox sender, logging ``<ref> <epoch>`` per hand-off."""
    from scheduler.app import build_app
    from scheduler.config import load_settings
    from scheduler.delivery.senders import OutboxSender, OutgoingEmail
    from scheduler.worker import Worker, install_stop_signals

    settings = load_settings()
    outbox = OutboxSender(settings.outbox_dir)
    handoffs = os.open(os.environ["BENCH_HANDOFF_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    class TimedOutbox:
        name = "outbox"

        def send(self, email: OutgoingEmail) -> str:
            os.write(handoffs, f"{email.ref} {time.time():.6f}\n".encode())
            return outbox.send(email)

    app = build_app(settings, sender=TimedOutbox())
    worker = Worker(app)
    install_stop_signals(worker)
    worker.start()
    print("started", flush=True)
    worker.stopped.wait()
    worker.stop()
    print(json.dumps({"rss_mb": peak_rss_mb()}), flush=True)


def run_apscheduler_role() -> None:
    """APScheduler 3.11 with a ``SQLAlchemyJobStore``: one date job per reminder."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from scheduler.db import make_engine

    count, mode = int(os.environ["BENCH_COUNT"]), os.environ["BENCH_MODE"]
    engine = make_engine(URL, schema=SCHEMA, pool_size=12)
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=engine)},
        timezone=UTC,
        # Fair to APScheduler: a late job still runs (the 1 s default grace drops them).
        job_defaults={"misfire_grace_time": None, "coalesce": False},
    )
    done = threading.Event()
    ran = [0]
    lock = threading.Lock()

    def finished() -> None:
        with lock:
            ran[0] += 1
            if ran[0] == count:
                done.set()

    JOB_HOOKS["finished"] = finished
    if mode == "send":
        JOB_HOOKS["work"] = SendWork(Path(os.environ["BENCH_OUT"]))
    scheduler.start(paused=True)
    due = datetime.now(UTC)
    started = time.perf_counter()
    for n in range(count):
        scheduler.add_job(
            send_job if mode == "send" else noop_job,
            "date",
            run_date=due,
            args=[n],
            id=f"reminder-{n}",
        )
    inserted = time.perf_counter() - started
    print(json.dumps({"inserted_s": inserted}), flush=True)
    started = time.perf_counter()
    scheduler.resume()
    done.wait()
    drained = time.perf_counter() - started
    scheduler.shutdown(wait=True)
    print(json.dumps({"drain_s": drained, "rss_mb": peak_rss_mb()}), flush=True)


JOB_HOOKS: dict[str, Any] = {}


def noop_job(_n: int) -> None:
    JOB_HOOKS["finished"]()


def send_job(n: int) -> None:
    JOB_HOOKS["work"].send(n)
    JOB_HOOKS["finished"]()


class SendWork:
    """What one reminder costs the send path: token, render, MIME, outbox (bench/send.py)."""

    def __init__(self, out: Path) -> None:
        from scheduler.delivery.render import Renderer
        from scheduler.delivery.senders import OutboxSender
        from scheduler.delivery.tokens import TokenSigner

        self.signer = TokenSigner([KEY], max_age=timedelta(days=60))
        self.renderer = Renderer()
        self.outbox = OutboxSender(out)

    def send(self, n: int) -> None:
        from scheduler.delivery.mime import build_message, to_bytes
        from scheduler.delivery.render import RenderContext, RenderItem
        from scheduler.delivery.senders import OutgoingEmail
        from scheduler.delivery.tokens import UnsubscribeClaim

        now = datetime.now(UTC)
        token = self.signer.sign(
            UnsubscribeClaim(f"r{n}", "topic", "task-reminder", "w1", "t1", str(n)), now=now
        )
        item = RenderItem(
            task_title="Prepare the quarterly report",
            task_url="https://example.com/t/1",
            workspace_name="Finance",
            due_at=now,
        )
        preferences = self.signer.sign_preferences(f"r{n}", now=now)
        rendered = self.renderer.render(
            RenderContext(
                topic="task-reminder",
                recipient_timezone="Europe/Berlin",
                locale="en",
                items=[item],
                total=1,
                unsubscribe_url=f"{BASE_URL}/u/{token}",
                preferences_url=f"{BASE_URL}/preferences/{preferences}",
                why="You get this email because you set a reminder on this task in Time Plan.",
                now=now,
            )
        )
        raw = to_bytes(
            build_message(
                from_addr="Time Plan <support@timeplanpush.com>",
                reply_to="support@timeplanpush.com",
                to=f"r{n}@example.org",
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                unsubscribe_url=f"{BASE_URL}/u/{token}",
                message_ref=f"a{n}",
                domain="timeplanpush.com",
                now=now,
            )
        )
        to, sender = f"r{n}@example.org", "support@timeplanpush.com"
        self.outbox.send(OutgoingEmail(f"a{n}", to, sender, raw))


def run_fire_role() -> None:
    """The FIRE stage alone, in a loop of batches, as a worker's fire job runs it."""
    from scheduler.db import make_engine, session_factory
    from scheduler.rules.fire import fire_due

    sessions = session_factory(make_engine(URL, schema=SCHEMA))
    started, fired = time.perf_counter(), 0
    while True:
        report = fire_due(sessions, now=datetime.now(UTC), batch_size=500)
        fired += report.fired
        if report.claimed < 500:
            break
    drained = time.perf_counter() - started
    print(json.dumps({"drain_s": drained, "fired": fired, "rss_mb": peak_rss_mb()}), flush=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def last_json(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdout is not None
    out, _ = process.communicate(timeout=3600)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"child failed with exit code {process.returncode}"
    return dict(json.loads(lines[-1]))


# --- scenarios ----------------------------------------------------------------------------


def follow(total: int, done: Callable[[], int], label: str) -> float:
    """A tqdm bar until ``done() >= total``; the seconds it took."""
    from tqdm import tqdm

    started = time.perf_counter()
    with tqdm(total=total, desc=label, unit="rem", leave=False) as bar:
        while (now := done()) < total:
            bar.update(now - bar.n)
            time.sleep(0.25)
        bar.update(total - bar.n)
    return time.perf_counter() - started


def fire_alone(count: int) -> dict[str, Any]:
    engine = fresh_schema()
    seed(engine, count, first=datetime.now(UTC) - timedelta(seconds=1))
    result = last_json(child("fire"))
    engine.dispose()
    return result | {"count": count, "per_s": count / result["drain_s"]}


def apscheduler(count: int, mode: str, out: Path) -> dict[str, Any]:
    engine = fresh_schema()
    process = child("apscheduler", BENCH_COUNT=str(count), BENCH_MODE=mode, BENCH_OUT=str(out))
    assert process.stdout is not None
    inserted = json.loads(process.stdout.readline())
    follow(
        count,
        lambda: count - count_sql(engine, "SELECT count(*) FROM apscheduler_jobs"),
        f"APScheduler {mode}",
    )
    result = last_json(process)
    engine.dispose()
    return result | inserted | {"count": count, "per_s": count / result["drain_s"]}


def engine_drain(count: int, workers: int, out: Path, stored: int = 0) -> dict[str, Any]:
    engine = fresh_schema()
    now = datetime.now(UTC)
    if stored:
        seed(engine, stored, first=now + timedelta(days=30))  # stored, not due
    seed(engine, count, first=now - timedelta(seconds=1))
    processes = [child("worker", **worker_env(out)) for _ in range(workers)]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline().startswith("started")
    sent = "SELECT count(*) FROM message WHERE status = 'sent'"
    took = follow(count, lambda: count_sql(engine, sent), f"engine x{workers}")
    for process in processes:
        process.send_signal(signal.SIGTERM)
    rss = max(last_json(p)["rss_mb"] for p in processes)
    engine.dispose()
    return {"count": count, "workers": workers, "stored": stored, "drain_s": took,
            "per_s": count / took, "rss_mb": rss}  # fmt: skip


def lags(rates: list[float], seconds: float, out: Callable[[str], Path]) -> list[dict[str, Any]]:
    results, series = [], []
    for rate in rates:
        result, points = lag(rate, seconds, out(f"lag{rate:.0f}"))
        results.append(result)
        series.append((result, points))
    plot(series)
    return results


def lag(rate: float, seconds: float, out: Path) -> tuple[dict[str, Any], list[tuple[float, float]]]:
    engine = fresh_schema()
    count = int(rate * seconds)
    first = datetime.now(UTC) + timedelta(seconds=15)  # workers are up before the first
    seed(engine, count, first=first, per_second=rate)
    processes = [child("worker", **worker_env(out)) for _ in range(2)]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline().startswith("started")
    sent = "SELECT count(*) FROM message WHERE status = 'sent'"
    follow(count, lambda: count_sql(engine, sent), f"lag at {rate:.0f}/s")
    for process in processes:
        process.send_signal(signal.SIGTERM)
        last_json(process)
    handoff = {
        ref.split(".")[0]: float(at)
        for ref, at in (line.split() for line in (out / "handoffs.log").read_text().splitlines())
    }
    with engine.connect() as conn:
        due = conn.execute(
            text("SELECT message_id, fire_at FROM occurrence WHERE message_id IS NOT NULL")
        ).all()
    engine.dispose()
    points = sorted((at.timestamp() - first.timestamp(), handoff[f"m{mid}"] - at.timestamp())
                    for mid, at in due)  # fmt: skip
    lags = sorted(p[1] for p in points)
    result = {"rate": rate, "count": count, "p50_s": quantile(lags, 0.5),
              "p99_s": quantile(lags, 0.99), "max_s": lags[-1]}  # fmt: skip
    return result, points


def quantile(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def plot(series: list[tuple[dict[str, Any], list[tuple[float, float]]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(9, 4.5))
    for result, points in series:
        label = f"{result['rate']:.0f}/s: p50 {result['p50_s']:.2f} s, p99 {result['p99_s']:.2f} s"
        axes.scatter([p[0] for p in points], [p[1] for p in points], s=2, alpha=0.4, label=label)
    axes.set_xlabel("due instant (s after the first)")
    axes.set_ylabel("lag to sender hand-off (s)")
    axes.set_yscale("log")
    axes.set_title("Due instant to sender hand-off, two workers, outbox sender")
    axes.legend(markerscale=6)
    figure.tight_layout()
    figure.savefig(RESULTS / "e2e_lag.png", dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["worker", "apscheduler", "fire"])
    parser.add_argument("--count", type=int, default=10_000, help="end-to-end drain size")
    parser.add_argument("--fire-count", type=int, default=20_000, help="fire vs no-op size")
    parser.add_argument("--stored", default="100000,1000000", help="stored rules for RSS")
    parser.add_argument("--lag-rate", default="500,200", help="reminders/s, comma-separated")
    parser.add_argument("--lag-seconds", type=float, default=30.0)
    args = parser.parse_args()
    roles = {"worker": run_worker_role, "apscheduler": run_apscheduler_role, "fire": run_fire_role}
    if args.role:
        roles[args.role]()
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"started": datetime.now(UTC).isoformat(), "args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as temp:
        scratch = Path(temp)

        def out(name: str) -> Path:
            (scratch / name).mkdir()
            return scratch / name

        results["fire_alone"] = fire_alone(args.fire_count)
        results["apscheduler_noop"] = apscheduler(args.fire_count, "noop", out("noop"))
        results["engine_1"] = engine_drain(args.count, 1, out("e1"))
        results["engine_2"] = engine_drain(args.count, 2, out("e2"))
        results["apscheduler_send"] = apscheduler(args.count, "send", out("send"))
        results["rss"] = [
            engine_drain(2_000, 1, out(f"rss{n}"), stored=int(n)) for n in args.stored.split(",")
        ]
        rates = [float(rate) for rate in args.lag_rate.split(",")]
        results["lag"] = lags(rates, args.lag_seconds, out)
    (RESULTS / "e2e.json").write_text(json.dumps(results, indent=2) + "\n")
    report(results)


def report(r: dict[str, Any]) -> None:
    fire, noop = r["fire_alone"], r["apscheduler_noop"]
    rows = [
        ("fire stage alone", fire),
        ("APScheduler no-op", noop),
        ("engine, 1 worker", r["engine_1"]),
        ("engine, 2 workers", r["engine_2"]),
        ("APScheduler send", r["apscheduler_send"]),
    ]
    print(f"{'':20} {'count':>8} {'drain s':>8} {'per s':>8} {'RSS MB':>7}")
    for name, row in rows:
        print(
            f"{name:20} {row['count']:8d} {row['drain_s']:8.1f} "
            f"{row['per_s']:8.0f} {row['rss_mb']:7.0f}"
        )
    print(f"fire / APScheduler no-op: {fire['per_s'] / noop['per_s']:.1f}x (goal 20x)")
    ratio = r["engine_2"]["per_s"] / r["apscheduler_send"]["per_s"]
    print(f"engine x2 / APScheduler send work: {ratio:.1f}x (goal 3x)")
    small, large = r["rss"][0], r["rss"][-1]
    print(
        f"peak RSS, {small['stored']} stored rules: {small['rss_mb']:.0f} MB; "
        f"{large['stored']}: {large['rss_mb']:.0f} MB "
        f"({large['rss_mb'] / small['rss_mb']:.2f}x, goal <= 1.2x)"
    )
    for lag_ in r["lag"]:
        print(
            f"lag at {lag_['rate']:.0f}/s: p50 {lag_['p50_s']:.2f} s, "
            f"p99 {lag_['p99_s']:.2f} s, max {lag_['max_s']:.2f} s "
            "(goal: p99 < 2 s + batch window, here 0 s)"
        )


if __name__ == "__main__":
    main()
