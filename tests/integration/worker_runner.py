"""One real worker process for the reliability tests and the end-to-end benchmark.

``python -m tests.integration.worker_runner`` builds the app from the environment (the
``db`` fixture's ``env()`` plus ``REMINDERS_*`` settings) and runs :class:`Worker` until
SIGTERM/SIGINT, exactly as ``reminders worker`` does, but with a short tick and a
recording sender, so the parent can count every hand-off across processes:

- ``RUNNER_SEND_LOG``: a file; each send appends one line ``<ref> <pid>`` with a single
  ``O_APPEND`` write (atomic for lines this short), so several processes share it.
- ``RUNNER_OUTBOX=1``: also write each message to ``REMINDERS_OUTBOX_DIR`` (the real
  outbox sender) before recording it.
- ``RUNNER_THROTTLE=START:COUNT``: sends number START..START+COUNT-1 of this process raise
  ``Throttled`` (a burst of SES throttling).
- ``RUNNER_PAUSE_AT=N``: send number N of this process raises ``StreamPaused`` once.
- ``RUNNER_INTERVAL``: the scheduler's tick in seconds (default 0.2).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from pathlib import Path

from scheduler.app import build_app
from scheduler.config import load_settings
from scheduler.delivery.senders import OutboxSender, OutgoingEmail
from scheduler.errors import StreamPaused, Throttled
from scheduler.worker import Worker, install_stop_signals


class RecordingSender:
    name = "recording"

    def __init__(self, log_path: Path, outbox: OutboxSender | None = None) -> None:
        self._fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self._outbox = outbox
        self._calls = 0
        self._lock = threading.Lock()
        start, _, count = os.environ.get("RUNNER_THROTTLE", "0:0").partition(":")
        self._throttled = range(int(start), int(start) + int(count or 0))
        self._pause_at = int(os.environ.get("RUNNER_PAUSE_AT", "0"))

    def send(self, email: OutgoingEmail) -> str:
        with self._lock:  # the send stage calls from several threads
            self._calls += 1
            call = self._calls
        if call in self._throttled:
            raise Throttled("Maximum sending rate exceeded (injected)")
        if call == self._pause_at:
            raise StreamPaused("Account sending paused (injected)")
        if self._outbox is not None:
            self._outbox.send(email)
        os.write(self._fd, f"{email.ref} {os.getpid()}\n".encode())
        return f"recorded-{email.ref}"


def main() -> int:
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
    )
    settings = load_settings()
    outbox = OutboxSender(settings.outbox_dir) if os.environ.get("RUNNER_OUTBOX") else None
    sender = RecordingSender(Path(os.environ["RUNNER_SEND_LOG"]), outbox)
    app = build_app(settings, sender=sender)
    worker = Worker(app, interval=float(os.environ.get("RUNNER_INTERVAL", "0.2")))
    install_stop_signals(worker)
    worker.start()
    print(f"started {worker.worker_id}", flush=True)
    worker.stopped.wait()
    worker.stop()
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
