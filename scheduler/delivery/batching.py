"""Group ready reminder items into batching windows, one message per window (DESIGN.md §7).

The rules, exactly:

1. Items are grouped by the batch key ``(recipient_id, topic)``.
2. Within a key, items are taken in order of ``(ready_at, sort_key, occurrence_id)``.
3. The first item opens a window: ``window_start = item.ready_at`` and
   ``closes_at = window_start + window``. The window is half-open, ``[start, closes_at)``.
4. The next item joins the current window when its ``ready_at < closes_at`` *and* the
   window holds fewer than ``max_items`` items. Otherwise it opens a new window (rule 3),
   so items beyond ``max_items`` start the next window at their own ``ready_at``.
5. A batch is **closed** (ready to send) when ``now >= closes_at`` (reason ``"window"``)
   or it holds ``max_items`` items (reason ``"full"``; "window" wins when both hold).
   Any other batch is **open**: more items may still join it.

Every item passed in must already be ready (``ready_at <= now``); a later one is a
caller's bug and raises ``ValueError``. The plan depends only on the items and ``now``:
planning again later with the same items gives the same windows, and an open batch only
ever gains items or closes; it never moves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import Literal

CloseReason = Literal["window", "full"]


@dataclass(frozen=True)
class ReadyItem:
    """An occurrence that passed the decide stage and waits to be batched.

    ``sort_key`` orders items that became ready at the same instant (and so their order in
    a digest); a task's due time as ISO text, or its title, are typical choices.
    """

    occurrence_id: int | str
    recipient_id: str
    topic: str
    ready_at: datetime
    sort_key: str = ""


@dataclass(frozen=True)
class Batch:
    """One window of items for one (recipient, topic): becomes one message."""

    recipient_id: str
    topic: str
    window_start: datetime
    closes_at: datetime
    items: tuple[ReadyItem, ...]
    closed: bool
    close_reason: CloseReason | None

    @property
    def key(self) -> tuple[str, str]:
        return (self.recipient_id, self.topic)


def plan_batches(
    items: Iterable[ReadyItem], *, window: timedelta, max_items: int, now: datetime
) -> list[Batch]:
    """Plan every window for ``items`` (see the module docstring for the rules).

    Returns closed and open batches together, ordered by ``(window_start, recipient_id,
    topic)``; filter on ``Batch.closed`` for the ones to send now.
    """
    if window <= timedelta(0):
        raise ValueError("window must be positive")
    if max_items < 1:
        raise ValueError("max_items must be at least 1")
    _require_aware(now, "now")
    ordered = sorted(items, key=_item_order)
    for item in ordered:
        _require_ready(item, now)
    batches = [
        _batch(group, window=window, max_items=max_items, now=now)
        for _, key_items in groupby(ordered, key=_batch_key)
        for group in _windows(list(key_items), window=window, max_items=max_items)
    ]
    batches.sort(key=lambda b: (b.window_start, b.recipient_id, b.topic))
    return batches


def _item_order(item: ReadyItem) -> tuple[str, str, datetime, str, str]:
    return (item.recipient_id, item.topic, item.ready_at, item.sort_key, str(item.occurrence_id))


def _batch_key(item: ReadyItem) -> tuple[str, str]:
    return (item.recipient_id, item.topic)


def _windows(
    items: Sequence[ReadyItem], *, window: timedelta, max_items: int
) -> Iterator[list[ReadyItem]]:
    """Split one key's items (already in order) into windows."""
    current: list[ReadyItem] = []
    for item in items:
        if current and (item.ready_at >= current[0].ready_at + window or len(current) >= max_items):
            yield current
            current = []
        current.append(item)
    if current:
        yield current


def _batch(items: list[ReadyItem], *, window: timedelta, max_items: int, now: datetime) -> Batch:
    start = items[0].ready_at
    closes_at = start + window
    reason: CloseReason | None = None
    if now >= closes_at:
        reason = "window"
    elif len(items) >= max_items:
        reason = "full"
    return Batch(
        recipient_id=items[0].recipient_id,
        topic=items[0].topic,
        window_start=start,
        closes_at=closes_at,
        items=tuple(items),
        closed=reason is not None,
        close_reason=reason,
    )


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware")


def _require_ready(item: ReadyItem, now: datetime) -> None:
    _require_aware(item.ready_at, f"ready_at of occurrence {item.occurrence_id}")
    if item.ready_at > now:
        raise ValueError(f"occurrence {item.occurrence_id} is not ready until {item.ready_at}")
