"""Handing messages to the sender several at a time: order, halting, what is left."""

from __future__ import annotations

import threading

import pytest

from scheduler.delivery.handoff import Handoff
from scheduler.delivery.senders import OutgoingEmail
from scheduler.errors import Throttled


def emails(count: int) -> list[tuple[int, OutgoingEmail]]:
    return [
        (n, OutgoingEmail(ref=f"m{n}", to="a@example.com", from_addr="b@example.com", raw=b"x"))
        for n in range(1, count + 1)
    ]


class Recorder:
    def __init__(self, fail: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.sent: list[str] = []
        self.fail = fail
        self.lock = threading.Lock()

    def send(self, email: OutgoingEmail) -> str:
        if email.ref in self.fail:
            raise Throttled("slow down")
        with self.lock:
            self.sent.append(email.ref)
        return f"id-{email.ref}"


@pytest.mark.parametrize("concurrency", [1, 4])
def test_every_message_goes_once_and_outcomes_name_it(concurrency: int) -> None:
    sender = Recorder()
    handoff = Handoff(sender.send, concurrency)
    outcomes = {
        message_id: outcome() for message_id, outcome in handoff.run(emails(9), lambda: False)
    }
    handoff.close()
    assert outcomes == {n: f"id-m{n}" for n in range(1, 10)}
    assert sorted(sender.sent) == sorted(f"m{n}" for n in range(1, 10))
    assert handoff.unsent == []


def test_one_at_a_time_keeps_claim_order() -> None:
    sender = Recorder()
    handoff = Handoff(sender.send)
    for _, outcome in handoff.run(emails(5), lambda: False):
        outcome()
    assert sender.sent == ["m1", "m2", "m3", "m4", "m5"]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_halted_sends_the_first_and_leaves_the_rest_in_order(concurrency: int) -> None:
    sender = Recorder()
    handoff = Handoff(sender.send, concurrency)
    seen = [message_id for message_id, outcome in handoff.run(emails(6), lambda: True) if outcome()]
    handoff.close()
    assert seen == [1]
    assert handoff.unsent == [2, 3, 4, 5, 6]


def test_halting_midway_stops_new_sends_and_lets_those_in_flight_finish() -> None:
    sender = Recorder()
    handoff = Handoff(sender.send, 2)
    results: list[int] = []
    for message_id, outcome in handoff.run(emails(8), lambda: len(results) >= 3):
        outcome()
        results.append(message_id)
    handoff.close()
    assert 3 <= len(results) <= 4  # at most one more was in flight when it halted
    assert sorted(results + handoff.unsent) == list(range(1, 9))
    assert handoff.unsent == sorted(handoff.unsent)


@pytest.mark.parametrize("concurrency", [1, 4])
def test_a_sender_error_reaches_the_caller_through_the_outcome(concurrency: int) -> None:
    handoff = Handoff(Recorder(fail={"m2"}).send, concurrency)
    errors = []
    for message_id, outcome in handoff.run(emails(3), lambda: False):
        try:
            outcome()
        except Throttled:
            errors.append(message_id)
    handoff.close()
    assert errors == [2]


def test_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Handoff(Recorder().send, 0)
