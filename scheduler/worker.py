"""APScheduler wiring: jobs that run the pipeline's stages (DESIGN §2, §12).

APScheduler is only the ticker here: each job runs one stage against the database,
which holds all state, so any number of processes can run these jobs at once on
PostgreSQL (row locks keep them apart). Each job has ``max_instances=1`` and
``coalesce=True``; a job loops while its stage finds full batches and returns as soon as
it finds no work, so the process sleeps only when idle.

SQLite has no row locks: a second worker on the same SQLite file refuses to start.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.engine import make_url

from scheduler.app import App
from scheduler.errors import ConfigurationError

log = logging.getLogger(__name__)

TICK_SECONDS = 1.0
# The ramp's daily evaluation is idempotent per UTC day; checking hourly (and at start)
# applies it soon after midnight without depending on one process being up at 00:00.
RAMP_EVALUATION_SECONDS = 3600.0


class Worker:
    def __init__(
        self, app: App, *, interval: float = TICK_SECONDS, events_wait_seconds: int = 20
    ) -> None:
        self.app = app
        self.interval = interval
        self.events_wait_seconds = events_wait_seconds  # SQS long poll; stop() waits for it
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self._lock: IO[str] | None = None
        self.stopped = threading.Event()
        self._stopping = threading.Event()  # ends the SES events poller's loop

    def start(self) -> None:
        self._lock = acquire_sqlite_lock(self.app.settings.database_url)
        pipeline = self.app.pipeline
        self._job("fire", pipeline.fire)
        self._job("decide+batch", lambda now: (pipeline.decide(now), pipeline.batch(now)))
        self._job("send", pipeline.send)
        self._job("ramp", self.app.ramp.evaluate_day, every=RAMP_EVALUATION_SECONDS)
        if self.app.settings.ses_events_queue_url:
            self._start_event_poller(self.app.settings.ses_events_queue_url)
        self.scheduler.start()
        log.info("worker started")

    def stop(self) -> None:
        """Finish the jobs in hand, then return (SIGTERM/SIGINT)."""
        self._stopping.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        self.stopped.set()

    def _start_event_poller(self, queue_url: str) -> None:
        """SES events from SQS: one job that long-polls until ``stop()`` (an interval job
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
        self.scheduler.add_job(
            poller.run, args=[self._stopping], id="ses-events", name="ses-events", max_instances=1
        )

    def _job(
        self, name: str, stage: Callable[[datetime], Any], *, every: float | None = None
    ) -> None:
        def run() -> None:
            try:
                stage(self.app.now())
            except Exception:
                # A stage failure (database restart, peer outage) must not kill the
                # ticker: the next tick tries again; nothing is lost, state is in the DB.
                log.exception("stage %s failed; retrying on the next tick", name)

        first = {} if every is None else {"next_run_time": datetime.now(UTC)}
        self.scheduler.add_job(
            run,
            "interval",
            seconds=every or self.interval,
            id=name,
            name=name,
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
            **first,
        )


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
