"""Workspace rules (topic ``workspace-digest``) collect what is due today or overdue.

"Today" is the recipient's local day when the digest is built; with nothing to collect,
nothing is sent and the occurrence records why (both dialects).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.integration.rules_support import (
    add_rule,
    occurrences,
    outbox,
    task,
    text_body,
    world,
)

TOKYO = "Asia/Tokyo"  # UTC+9, no DST
T0 = datetime(2026, 3, 9, 0, 0, tzinfo=UTC)
# 08:00 in Tokyo on 2026-03-10 is 23:00Z on 03-09; Tokyo's 03-10 ends at 15:00Z on 03-10.
DIGEST_AT = datetime(2026, 3, 9, 23, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=61)


def digest_rule(app: Any, *, workspace: str = "w1", rule_id: str = "digest-1") -> None:
    add_rule(
        app,
        {"kind": "recurring", "rrule": "FREQ=DAILY", "start": "2026-03-10T08:00"},
        rule_id=rule_id,
        task_id=None,
        workspace_id=workspace,
        topic="workspace-digest",
        now=T0,
    )


def seed_tasks(app: Any) -> None:
    app.directory.upsert_workspace("w2", {"name": "Elsewhere"}, now=T0)
    cases = {
        "Overdue since Sunday": (datetime(2026, 3, 8, 12, tzinfo=UTC), "open", "w1"),
        "Due tonight in Tokyo": (datetime(2026, 3, 10, 14, tzinfo=UTC), "open", "w1"),
        "Due just after Tokyo midnight": (datetime(2026, 3, 10, 15, 30, tzinfo=UTC), "open", "w1"),
        "Finished already": (datetime(2026, 3, 8, 12, tzinfo=UTC), "done", "w1"),
        "Someday": (None, "open", "w1"),
        "Other workspace, due today": (datetime(2026, 3, 10, 1, tzinfo=UTC), "open", "w2"),
    }
    for n, (title, (due, status, workspace)) in enumerate(cases.items()):
        task(app, f"d{n}", due_at=due, status=status, title=title, workspace=workspace, now=T0)


def test_a_digest_lists_the_workspaces_tasks_due_today_or_overdue(make_app: Any) -> None:
    app = make_app(T0)
    world(app, timezone=TOKYO, now=T0)  # t1 has no due date: not collected
    seed_tasks(app)
    digest_rule(app)

    assert app.tick(DIGEST_AT)["fired"] == 1
    app.tick(DIGEST_AT + WINDOW)

    [message] = outbox(app)
    body = text_body(message)
    assert "Overdue since Sunday" in body
    assert "Due tonight in Tokyo" in body
    for absent in (
        "Due just after Tokyo midnight",
        "Finished already",
        "Someday",
        "Other workspace",
        "Task t1",
    ):
        assert absent not in body
    html = message.get_body(("html",))
    assert html is not None and "Due tonight in Tokyo" in html.get_content()  # type: ignore[attr-defined]
    [occ] = occurrences(app)
    assert (occ.status, occ.task_id, occ.workspace_id) == ("sent", None, "w1")


def test_a_digest_with_nothing_to_collect_is_not_sent_and_says_why(make_app: Any) -> None:
    app = make_app(T0)
    world(app, timezone=TOKYO, now=T0)
    app.directory.upsert_workspace("empty", {"name": "Quiet"}, now=T0)
    task(app, "later", due_at=DIGEST_AT + timedelta(days=3), workspace="empty", now=T0)
    digest_rule(app, workspace="empty")

    app.tick(DIGEST_AT)
    app.tick(DIGEST_AT + WINDOW)

    assert outbox(app) == []
    [occ] = occurrences(app)
    assert occ.status == "dropped"
    assert occ.reason == "no open tasks due today or overdue in the workspace"


def test_a_digest_emptied_before_sending_is_dropped_with_a_reason(make_app: Any) -> None:
    app = make_app(T0)
    world(app, timezone=TOKYO, due_at=datetime(2026, 3, 9, 12, tzinfo=UTC), now=T0)
    digest_rule(app)
    assert app.tick(DIGEST_AT)["batched"] == 1

    task(app, "t1", due_at=datetime(2026, 3, 9, 12, tzinfo=UTC), status="done", now=DIGEST_AT)
    app.tick(DIGEST_AT + WINDOW)

    assert outbox(app) == []
    [occ] = occurrences(app)
    assert occ.status == "dropped" and occ.reason


def test_the_digest_fires_daily_on_the_recipients_wall_clock(make_app: Any) -> None:
    app = make_app(T0)
    world(app, timezone=TOKYO, due_at=datetime(2026, 3, 9, 12, tzinfo=UTC), now=T0)
    digest_rule(app)

    for day in range(3):
        at = DIGEST_AT + timedelta(days=day)
        app.tick(at)
        app.tick(at + WINDOW)

    assert [o.fire_at for o in occurrences(app)] == [
        DIGEST_AT + timedelta(days=day) for day in range(3)
    ]
    assert len(outbox(app)) == 3  # the overdue task is listed every day until it is done
