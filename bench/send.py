"""Throughput of the send path without the database: token → render → MIME → outbox.

    PYTHONPATH=. python bench/send.py [--count 5000] [--digest-share 0.2] [--out DIR]

Prints messages per second and the share of time each part takes, in wall-clock time and
in this process's CPU time: on a shared machine other processes stretch the wall clock,
while CPU time shows what the code itself costs. The outbox writes one fsynced file per
message (plus a directory fsync), so its wall time is mostly the disk's.
A fifth of the messages (by default) are digests of 2-14 items; zones and locales rotate.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from scheduler.delivery.mime import build_message, to_bytes
from scheduler.delivery.render import RenderContext, Renderer, RenderItem
from scheduler.delivery.senders import OutboxSender, OutgoingEmail
from scheduler.delivery.tokens import TokenSigner, UnsubscribeClaim

NOW = datetime(2026, 3, 8, 10, 0, tzinfo=UTC)
BASE_URL = "https://app.timeplanpush.com"
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "America/Sao_Paulo", "UTC")
LOCALES = ("en", "en-GB", "de", "fr", "es", "pt-BR", "ja")


Spent = dict[str, dict[str, float]]


def run(count: int, digest_share: float, out: Path) -> Spent:
    rng = random.Random(8058)
    signer = TokenSigner(["bench-signing-key-0123456789abcdef"], max_age=timedelta(days=60))
    renderer = Renderer()
    sender = OutboxSender(out)
    spent: Spent = {"wall": defaultdict(float), "cpu": defaultdict(float)}
    for n in range(count):
        size = rng.randint(2, 14) if rng.random() < digest_share else 1
        items = [
            RenderItem(
                task_title=f"Task {n}-{i}: prepare the quarterly report 📊",
                task_url=f"{BASE_URL}/t/{n}-{i}",
                workspace_name="Finance",
                due_at=NOW + timedelta(hours=rng.randint(-48, 72)),
            )
            for i in range(size)
        ]
        ref = f"msg-{n}"
        t0 = _now()
        claim = UnsubscribeClaim(f"rec_{n}", "topic", "task-reminder", "ws_1", f"task_{n}", n)
        token = signer.sign(claim, now=NOW)
        preferences = signer.sign_preferences(f"rec_{n}", now=NOW)
        t1 = _now()
        rendered = renderer.render(
            RenderContext(
                topic="task-reminder",
                recipient_timezone=ZONES[n % len(ZONES)],
                locale=LOCALES[n % len(LOCALES)],
                items=items,
                total=size,
                unsubscribe_url=f"{BASE_URL}/u/{token}",
                preferences_url=f"{BASE_URL}/preferences/{preferences}",
                why="you asked Time Plan to remind you about these tasks",
                now=NOW,
            )
        )
        t2 = _now()
        raw = to_bytes(
            build_message(
                from_addr="Time Plan <support@timeplanpush.com>",
                reply_to="support@timeplanpush.com",
                to=f"user{n}@example.org",
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                unsubscribe_url=f"{BASE_URL}/u/{token}",
                message_ref=ref,
                domain="timeplanpush.com",
                now=NOW,
            )
        )
        t3 = _now()
        sender.send(OutgoingEmail(ref, f"user{n}@example.org", "support@timeplanpush.com", raw, {}))
        t4 = _now()
        for part, start, end in (
            ("token", t0, t1), ("render", t1, t2), ("mime", t2, t3), ("outbox", t3, t4)
        ):  # fmt: skip
            spent["wall"][part] += end[0] - start[0]
            spent["cpu"][part] += end[1] - start[1]
    return spent


def _now() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--digest-share", type=float, default=0.2)
    parser.add_argument("--out", type=Path, default=None, help="outbox dir (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as temp:
        out = args.out or Path(temp)
        started = time.perf_counter()
        spent = run(args.count, args.digest_share, out)
        elapsed = time.perf_counter() - started
    mix = f"{args.digest_share:.0%} digests of 2-14 items"
    print(f"{args.count} messages ({mix}) in {elapsed:.2f} s")
    print(f"throughput, all parts:        {args.count / elapsed:8,.0f} messages/s (wall)")
    for clock in ("wall", "cpu"):
        core = sum(spent[clock][part] for part in ("token", "render", "mime"))
        rate = args.count / core
        print(f"render + MIME + token only:  {rate:8,.0f} messages/s ({clock})")
    header = ("part", "wall s", "share", "per msg", "cpu s", "share", "per msg")
    print("{:<8} {:>8} {:>7} {:>11} {:>8} {:>7} {:>11}".format(*header))
    for part in spent["wall"]:
        row = [f"{part:<8}"]
        for clock in ("wall", "cpu"):
            seconds = spent[clock][part]
            share = seconds / sum(spent[clock].values())
            row.append(f"{seconds:8.3f} {share:7.1%} {seconds / args.count * 1000:8.3f} ms")
        print(" ".join(row))


if __name__ == "__main__":
    main()
