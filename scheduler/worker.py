"""APScheduler wiring: jobs that run the pipeline's stages (DESIGN §2, §12).

APScheduler is only the ticker here: each job runs one stage against the database,
which holds all state, so any number of processes can run these jobs at once on
PostgreSQL (row locks keep them apart). Each job has ``max_instances=1`` and
``coalesce=True``; a job loops while its stage finds full batches and returns as soon as
it finds less, so the scheduler's short interval is the only sleep, and only when idle.

Stopping (SIGTERM/SIGINT): the stages stop taking new batches, the batch in hand is
finished, the messages this worker still holds leased go back to ``queued``, and the
process exits. A worker that dies instead (SIGKILL, power loss) leaves its leases to
expire; the SEND stage claims ``sending`` rows whose lease ran out again, so at most the
sends that were in flight repeat.

A failing stage (the database restarting, a peer outage) is logged and tried again on the
next tick; the engine's ``pool_pre_ping`` replaces dead connections.

SQLite has no row locks: a second worker on the same SQLite file refuses to start.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import make_url

from scheduler.app import App
from scheduler.errors import ConfigurationError
from scheduler.retention import Retention

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
# The ramp's daily evaluation is idempotent per UTC day; checking hourly (and at start)
# applies it soon after midnight without depending on one process being up at 00:00.
RAMP_EVALUATION_SECONDS = 3600.0
# Retention deletes history in bounded batches; hourly keeps each run short.
RETENTION_SECONDS = 3600.0

Stage = Callable[[datetime], Any]
Loop = Callable[[threading.Event], None]


class Worker:
    def __init__(
        self, app: App, *, interval: float = TICK_SECONDS, events_wait_seconds: int = 20
    ) -> None:
        self.app = app
        self.interval = interval
        self.events_wait_seconds = events_wait_seconds  # SQS long poll; stop() waits for it
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self._lock: IO[str] | None = None
        # Set on SIGTERM/SIGINT: no new batches. ``stopped`` wakes whoever waits on us.
        self._stopping = threading.Event()
        self.stopped = threading.Event()
        self._failing: set[str] = set()
        self.retention = Retention(
            app.sessions, days=app.settings.retention_days, stopping=self._stopping.is_set
        )

    @property
    def worker_id(self) -> str:
        return self.app.pipeline.send_stage.worker_id

    def claim_database(self) -> None:
        """On SQLite, take the one-worker lock (or refuse); a no-op once held or on PostgreSQL.

        ``reminders run`` calls it before migrating, so a second process refuses before it
        writes anything."""
        if self._lock is None:
            self._lock = acquire_sqlite_lock(self.app.settings.database_url)

    def start(self) -> None:
        self.claim_database()
        _quiet_apscheduler()
        pipeline = self.app.pipeline
        pipeline.stopping = pipeline.send_stage.stopping = self._stopping.is_set
        pipeline.clock = pipeline.send_stage.clock = self.app.now
        # Each stage that moved work wakes the next at once, so a reminder waits for one
        # tick (fire's), not three, between its due instant and the sender.
        self.add_stage("fire", lambda now: pipeline.fire(now).fired, then="decide+batch")
        self.add_stage("decide+batch", self._decide_and_batch, then="send")
        self.add_stage("send", pipeline.send)
        self.add_stage("ramp", self.app.ramp.evaluate_day, every=RAMP_EVALUATION_SECONDS)
        self.add_stage("retention", self.retention.run, every=RETENTION_SECONDS)
        if self.app.settings.ses_events_queue_url:
            self._start_event_poller(self.app.settings.ses_events_queue_url)
        self.scheduler.start()
        log.info("worker %s started", self.worker_id)

    def request_stop(self) -> None:
        """Stop taking new work; safe to call from a signal handler. ``stop()`` finishes."""
        self._stopping.set()
        self.stopped.set()

    def stop(self) -> None:
        """Finish the batches in hand, give back this worker's leases, then return."""
        self._stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self._release_leases()
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        self.stopped.set()
        log.info("worker %s stopped", self.worker_id)

    # -- the jobs --------------------------------------------------------------------

    def add_stage(
        self, name: str, stage: Stage, *, every: float | None = None, then: str | None = None
    ) -> None:
        """A job that runs ``stage(now)`` every ``every`` seconds (the tick by default).

        A job with its own period also runs once at start, so a daily or hourly duty is
        not postponed by a restart. When ``stage`` returns a positive count, the job named
        ``then`` runs at once instead of on its next tick.
        """
        first = {} if every is None else {"next_run_time": datetime.now(UTC)}
        self.scheduler.add_job(
            self._guarded(name, stage, then),
            "interval",
            seconds=every or self.interval,
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            **first,
        )

    def add_loop(self, name: str, loop: Loop) -> None:
        """A job that runs once, for the worker's life: ``loop(stopping)`` returns when
        ``stopping`` is set (a long-polling reader such as the SES events poller, which an
        interval job would overlap with its own long receives)."""
        self.scheduler.add_job(loop, args=[self._stopping], id=name, name=name, max_instances=1)

    def _start_event_poller(self, queue_url: str) -> None:
        """SES events from SQS: a loop that long-polls until ``stop()`` (an interval job
        would overlap its own 20-second receives). ``stop()`` waits for the receive in hand."""
        from scheduler.delivery.ses import make_aws_client
        from scheduler.delivery.sqs_poller import SqsPoller

        settings = self.app.settings
        client = make_aws_client("sqs", settings.ses_region, settings.aws_endpoint_url)
        poller = SqsPoller(
            client,
            queue_url,
            self.app.ses_events,
            now=self.app.now,
            wait_seconds=self.events_wait_seconds,
        )
        self.add_loop("ses-events", poller.run)

    def _decide_and_batch(self, now: datetime) -> int:
        self.app.pipeline.decide(now)
        return self.app.pipeline.batch(self.app.now()).queued

    def _wake(self, name: str) -> None:
        # Shutting down, the job may be gone already: nothing to wake then.
        with contextlib.suppress(JobLookupError):
            self.scheduler.modify_job(name, next_run_time=datetime.now(UTC))

    def _guarded(self, name: str, stage: Stage, then: str | None = None) -> Callable[[], None]:
        def run() -> None:
            if self._stopping.is_set():
                return
            try:
                moved = stage(self.app.now())
                if then is not None and isinstance(moved, int) and moved > 0:
                    self._wake(then)
            except Exception as exc:
                # A stage failure (database restart, peer outage) must not kill the
                # ticker: the next tick tries again; nothing is lost, state is in the DB.
                # The first failure in a row carries the traceback, the rest one line.
                if name in self._failing:
                    log.warning("stage %s still failing: %s", name, _one_line(exc))
                else:
                    self._failing.add(name)
                    log.exception("stage %s failed; retrying on the next tick", name)
            else:
                if name in self._failing:
                    self._failing.discard(name)
                    log.info("stage %s recovered", name)

        return run

    def _release_leases(self) -> None:
        try:
            released = self.app.pipeline.send_stage.release_all()
        except Exception as exc:  # the database is gone: the leases expire on their own
            log.warning("could not release leases at stop: %s", _one_line(exc))
            return
        if released:
            log.info("released %d leased message(s) back to the queue", released)


def install_stop_signals(worker: Worker, *, also: Callable[[], None] | None = None) -> None:
    """SIGTERM and SIGINT ask ``worker`` to stop (the caller then calls ``stop()``), and
    call ``also`` (``reminders run`` stops its web server with it)."""

    def handle(_signum: int, _frame: FrameType | None) -> None:
        worker.request_stop()
        if also is not None:
            also()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def acquire_sqlite_lock(database_url: str) -> IO[str] | None:
    """On SQLite, hold an exclusive lock beside the database file for the worker's life."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    path = Path(url.database + ".worker.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ConfigurationError(
            f"another worker already runs on {url.database}; SQLite supports one worker "
            "(use PostgreSQL to run several)"
        ) from None
    return handle


def _quiet_apscheduler() -> None:
    # APScheduler logs every run at INFO and, at WARNING, every tick skipped because the
    # previous run of a long drain is still going (max_instances=1 does that on purpose).
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)
    logging.getLogger("apscheduler.scheduler").setLevel(logging.ERROR)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
