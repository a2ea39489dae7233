"""A ``once`` rule travels every stage and lands as a complete MIME message (both dialects)."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from scheduler.tables import Message, Occurrence

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def register(app: Any, *, at: datetime, email_addr: str = "ada@example.com") -> None:
    app.directory.upsert_recipient("r1", {"email": email_addr, "timezone": "Europe/Berlin"}, now=T0)
    app.directory.upsert_workspace("w1", {"name": "Launch"}, now=T0)
    app.directory.upsert_task(
        "t1",
        {
            "workspace_id": "w1",
            "title": "Ship <it> 🚀",
            "url": "https://app.example/t1",
            "due_at": (at + timedelta(hours=3)).isoformat(),
        },
        now=T0,
    )
    app.rules.create(
        {
            "id": "rule-1",
            "recipient_id": "r1",
            "task_id": "t1",
            "topic": "task-reminder",
            "schedule": {"kind": "once", "at": at.isoformat()},
        },
        now=T0,
    )


def outbox(app: Any) -> list[Path]:
    directory = Path(app.settings.outbox_dir)
    return sorted(directory.glob("*.eml")) if directory.exists() else []


def test_once_rule_reaches_the_outbox(make_app: Any) -> None:
    at = T0 + timedelta(minutes=30)
    app = make_app(T0)
    register(app, at=at)

    assert app.tick(at - timedelta(seconds=1))["fired"] == 0
    first = app.tick(at)
    assert first["fired"] == 1 and first["decided"] == 1 and first["batched"] == 1
    assert first["sent"] == 0  # the batch window is still open
    done = app.tick(at + timedelta(seconds=61))
    assert done["sent"] == 1

    [path] = outbox(app)
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["To"] == "ada@example.com"
    assert "support@timeplanpush.com" in message["From"]
    assert message["Reply-To"] == "support@timeplanpush.com"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/u/")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    keys = [k.lower() for k in message]
    assert keys.index("list-unsubscribe") < keys.index("list-unsubscribe-post")
    html = message.get_body(("html",)).get_content()
    assert "Ship &lt;it&gt; 🚀" in html and "<it>" not in html

    with app.sessions() as session:
        occ = session.scalars(select(Occurrence)).one()
        msg = session.scalars(select(Message)).one()
    assert occ.status == "sent" and occ.message_id == msg.id
    assert msg.status == "sent" and msg.ses_message_id


def test_global_off_blocks_and_records_the_layer(make_app: Any) -> None:
    at = T0 + timedelta(minutes=30)
    app = make_app(T0)
    register(app, at=at)
    from scheduler.tables import Preference

    with app.sessions.begin() as session:
        session.add(
            Preference(
                recipient_id="r1", scope="global", scope_id="", email_enabled=False, updated_at=T0
            )
        )
    app.tick(at)
    app.tick(at + timedelta(minutes=5))
    assert outbox(app) == []
    with app.sessions() as session:
        occ = session.scalars(select(Occurrence)).one()
    assert (occ.status, occ.layer) == ("blocked", "global")


def test_a_tick_run_twice_sends_once(make_app: Any) -> None:
    at = T0 + timedelta(minutes=30)
    app = make_app(T0)
    register(app, at=at)
    for _ in range(3):
        app.tick(at)
        app.tick(at + timedelta(minutes=2))
    assert len(outbox(app)) == 1
