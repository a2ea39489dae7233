"""Hand composed messages to the sender, several at a time.

A send is mostly waiting: an HTTPS round trip to SES (tens of milliseconds) or an fsync
for the outbox. One worker sending one message at a time spends nearly all of that
time idle, so the SEND stage keeps up to ``concurrency`` sends in flight from a small
thread pool; boto3 clients are thread-safe ("Multithreading or multiprocessing with
clients", https://boto3.amazonaws.com/v1/documentation/api/latest/guide/clients.html)
and the outbox writes one file per message. Outcomes come back to the calling thread,
which alone touches the database.

The first message always goes; before each further one ``halted()`` is asked (the
stream paused, the worker is stopping, the lease is running out). Messages never
submitted are left in :attr:`Handoff.unsent` for the caller to give back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from functools import partial

from scheduler.delivery.senders import OutgoingEmail

# (message id, a call that returns the provider's id or raises the sender's error)
Outcome = tuple[int, Callable[[], str]]


class Handoff:
    def __init__(self, send: Callable[[OutgoingEmail], str], concurrency: int = 1) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._send = send
        self._concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._waiting: list[tuple[int, OutgoingEmail]] = []  # next to go at the end

    @property
    def unsent(self) -> list[int]:
        """The messages of the last run never handed to the sender."""
        return [message_id for message_id, _ in reversed(self._waiting)]

    def run(
        self, ready: list[tuple[int, OutgoingEmail]], halted: Callable[[], bool]
    ) -> Iterator[Outcome]:
        """Yield each message's outcome as its send completes."""
        self._waiting = list(reversed(ready))
        if self._concurrency == 1 or len(ready) <= 1:
            yield from self._one_by_one(halted)
        else:
            yield from self._in_parallel(halted)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _one_by_one(self, halted: Callable[[], bool]) -> Iterator[Outcome]:
        first = True
        while self._waiting and (first or not halted()):
            first = False
            message_id, email = self._waiting.pop()
            yield message_id, partial(self._send, email)

    def _in_parallel(self, halted: Callable[[], bool]) -> Iterator[Outcome]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="send")
        flying: dict[Future[str], int] = {}
        first = True
        while True:
            while self._waiting and len(flying) < self._concurrency:
                if not first and halted():
                    break
                first = False
                message_id, email = self._waiting.pop()
                flying[self._pool.submit(self._send, email)] = message_id
            if not flying:
                return
            done, _ = wait(flying, return_when=FIRST_COMPLETED)
            for future in done:
                yield flying.pop(future), future.result
