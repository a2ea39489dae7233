from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.delivery.batching import Batch, ReadyItem, plan_batches

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=60)


def item(
    occurrence_id: int, seconds: float, recipient: str = "r1", topic: str = "task-reminder"
) -> ReadyItem:
    return ReadyItem(occurrence_id, recipient, topic, T0 + timedelta(seconds=seconds))


def plan(items: list[ReadyItem], now_seconds: float, max_items: int = 10) -> list[Batch]:
    now = T0 + timedelta(seconds=now_seconds)
    return plan_batches(items, window=WINDOW, max_items=max_items, now=now)


def ids(batch: Batch) -> list[int | str]:
    return [i.occurrence_id for i in batch.items]


def test_no_items_no_batches() -> None:
    assert plan([], 0) == []


def test_window_opens_at_the_first_item_and_stays_open_until_it_elapses() -> None:
    items = [item(1, 0), item(2, 30)]
    [batch] = plan(items, 59)
    assert (batch.window_start, batch.closes_at) == (T0, T0 + WINDOW)
    assert ids(batch) == [1, 2]
    assert not batch.closed
    assert batch.close_reason is None


def test_window_closes_exactly_at_window_start_plus_window() -> None:
    [batch] = plan([item(1, 0)], 60)
    assert batch.closed
    assert batch.close_reason == "window"


def test_item_at_the_closing_instant_opens_the_next_window() -> None:
    first, second = plan([item(1, 0), item(2, 60)], 60)
    assert ids(first) == [1]
    assert first.closed
    assert ids(second) == [2]
    assert not second.closed
    assert second.window_start == T0 + WINDOW


def test_full_batch_closes_early_and_overflow_opens_the_next_window() -> None:
    items = [item(n, n) for n in range(5)]
    first, second = plan(items, 10, max_items=3)
    assert ids(first) == [0, 1, 2]
    assert first.closed
    assert first.close_reason == "full"
    assert ids(second) == [3, 4]
    assert second.window_start == T0 + timedelta(seconds=3)
    assert not second.closed


def test_elapsed_window_wins_over_full_as_the_reason() -> None:
    [batch] = plan([item(1, 0), item(2, 1)], 120, max_items=2)
    assert batch.close_reason == "window"


def test_keys_are_batched_separately() -> None:
    items = [
        item(1, 0, "r1", "task-reminder"),
        item(2, 1, "r2", "task-reminder"),
        item(3, 2, "r1", "workspace-digest"),
        item(4, 3, "r1", "task-reminder"),
    ]
    batches = plan(items, 10)
    assert [(b.key, ids(b)) for b in batches] == [
        (("r1", "task-reminder"), [1, 4]),
        (("r2", "task-reminder"), [2]),
        (("r1", "workspace-digest"), [3]),
    ]


def test_sort_key_orders_items_ready_at_the_same_instant() -> None:
    items = [
        ReadyItem(1, "r1", "t", T0, sort_key="b"),
        ReadyItem(2, "r1", "t", T0, sort_key="a"),
    ]
    [batch] = plan(items, 0)
    assert ids(batch) == [2, 1]


def test_input_order_does_not_matter() -> None:
    items = [item(3, 70), item(1, 0), item(2, 30)]
    assert plan(items, 200) == plan(sorted(items, key=lambda i: i.ready_at), 200)


def test_item_not_yet_ready_is_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="not ready"):
        plan([item(1, 5)], 0)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        plan_batches([], window=WINDOW, max_items=1, now=datetime(2026, 3, 2))
    naive = ReadyItem(1, "r", "t", datetime(2026, 3, 2))
    with pytest.raises(ValueError, match="aware"):
        plan_batches([naive], window=WINDOW, max_items=1, now=T0)


@pytest.mark.parametrize(("window", "max_items"), [(timedelta(0), 1), (WINDOW, 0)])
def test_bad_parameters_are_refused(window: timedelta, max_items: int) -> None:
    with pytest.raises(ValueError):
        plan_batches([], window=window, max_items=max_items, now=T0)


item_lists = st.lists(
    st.builds(
        item,
        occurrence_id=st.integers(0, 10_000),
        seconds=st.integers(0, 600),
        recipient=st.sampled_from(["r1", "r2"]),
        topic=st.sampled_from(["task-reminder", "workspace-digest"]),
    ),
    max_size=40,
    unique_by=lambda i: i.occurrence_id,
)


@settings(max_examples=200, deadline=None)
@given(items=item_lists, max_items=st.integers(1, 6), extra=st.integers(0, 300))
def test_invariants(items: list[ReadyItem], max_items: int, extra: int) -> None:
    now_seconds = 600 + extra
    batches = plan(items, now_seconds, max_items=max_items)
    now = T0 + timedelta(seconds=now_seconds)
    # Every item lands in exactly one batch.
    planned = sorted(i.occurrence_id for b in batches for i in b.items)
    assert planned == sorted(i.occurrence_id for i in items)
    for b in batches:
        assert 1 <= len(b.items) <= max_items
        assert all((i.recipient_id, i.topic) == b.key for i in b.items)
        assert b.window_start == b.items[0].ready_at
        assert all(b.window_start <= i.ready_at < b.closes_at for i in b.items)
        assert b.closed == (now >= b.closes_at or len(b.items) == max_items)
    # At most one open batch per key, and it is the latest window of that key.
    for key in {b.key for b in batches}:
        windows = [b for b in batches if b.key == key]
        assert sum(not b.closed for b in windows) <= 1
        assert all(b.closed for b in windows[:-1])


@settings(max_examples=200, deadline=None)
@given(items=item_lists, max_items=st.integers(1, 6), later=st.integers(0, 120))
def test_windows_never_move_as_time_passes(
    items: list[ReadyItem], max_items: int, later: int
) -> None:
    def windows(now_seconds: int) -> list[tuple[object, ...]]:
        return [(b.key, b.window_start, b.items) for b in plan(items, now_seconds, max_items)]

    assert windows(600) == windows(600 + later)
