"""Turn a leased message row into an email: re-check, render, sign, build MIME.

Preferences are checked again here (DESIGN §6): an unsubscribe that landed between fire
and send wins, and items whose task was completed or deleted meanwhile, or whose rule
changed, are dropped with a recorded reason. What is left is rendered with Jinja2 and
built into MIME carrying a signed RFC 8058 one-click unsubscribe link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from scheduler.delivery.mime import build_message, to_bytes
from scheduler.delivery.render import RenderContext, Renderer, RenderItem
from scheduler.delivery.senders import OutgoingEmail
from scheduler.delivery.tokens import TokenSigner, UnsubscribeClaim
from scheduler.preferences.decision import Outcome
from scheduler.preferences.views import RecipientContext, load_contexts
from scheduler.rules.digest import digest_tasks
from scheduler.rules.timezones import resolve_zone
from scheduler.tables import Message, Occurrence, ReminderRule, Task, Topic, Workspace


@dataclass(frozen=True)
class Composer:
    renderer: Renderer
    signer: TokenSigner
    base_url: str
    mail_domain: str

    def compose_many(
        self, session: Session, messages: list[Message], now: datetime
    ) -> list[OutgoingEmail | None]:
        """:meth:`compose` for a batch, with what it reads loaded in a few queries.

        The items, recipients, rules, tasks and workspaces of the whole batch are read at
        once; ``session.get`` then finds rules, tasks, workspaces and topics in the
        session's identity map instead of asking the database once per message.
        """
        ids = [m.id for m in messages]
        items: dict[int | None, list[Occurrence]] = {i: [] for i in ids}
        for occ in session.scalars(_batched_items(col(Occurrence.message_id).in_(ids))):
            items[occ.message_id].append(occ)
        contexts = load_contexts(session, (m.recipient_id for m in messages))
        occurrences = [o for group in items.values() for o in group]
        tasks = _load(session, Task, {o.task_id for o in occurrences if o.task_id})
        # The identity map holds rows weakly: keep them referenced while composing.
        loaded = [
            *tasks,
            *_load(session, ReminderRule, {o.rule_id for o in occurrences}),
            *_load(session, Workspace, {t.workspace_id for t in tasks}),
            *_load(session, Topic, {m.topic for m in messages}, key=col(Topic.key)),
        ]
        emails = [
            self.compose(session, m, now, items=items[m.id], ctx=contexts[m.recipient_id])
            for m in messages
        ]
        del loaded
        return emails

    def compose(
        self,
        session: Session,
        message: Message,
        now: datetime,
        *,
        items: list[Occurrence],
        ctx: RecipientContext,
    ) -> OutgoingEmail | None:
        """The email for ``message`` from its batched ``items`` (as :meth:`compose_many`
        loads them), or None when nothing in it may be sent any more."""
        topic = session.get(Topic, message.topic)
        assert topic is not None
        kept = [occ for occ in items if self._still_wanted(session, occ, ctx, topic, now)]
        if not kept or ctx.email is None or ctx.recipient is None:
            return None
        render_items = self._render_items(session, kept, ctx, now)
        if not render_items:
            for occ in kept:
                _drop(occ, None, "nothing left to collect when the digest was built")
            return None
        claim = UnsubscribeClaim(
            recipient_id=message.recipient_id,
            scope="topic",
            topic=message.topic,
            workspace_id=kept[0].workspace_id,
            task_id=kept[0].task_id if len(kept) == 1 else None,
            message_id=str(message.id),
        )
        token = self.signer.sign(claim, now=now)
        preferences_token = self.signer.sign_preferences(message.recipient_id, now=now)
        base = self.base_url.rstrip("/")
        unsubscribe_url = f"{base}/u/{token}"
        rendered = self.renderer.render(
            RenderContext(
                topic=message.topic,
                recipient_timezone=ctx.recipient.timezone,
                locale=ctx.locale,
                items=render_items,
                total=len(render_items),
                unsubscribe_url=unsubscribe_url,
                preferences_url=f"{base}/preferences/{preferences_token}",
                why=_why(message.topic),
                now=now,
            )
        )
        ref = f"m{message.id}.{int(message.window_start.timestamp())}"
        mime = build_message(
            from_addr=topic.from_addr,
            reply_to=topic.reply_to,
            to=ctx.email,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            unsubscribe_url=unsubscribe_url,
            message_ref=ref,
            domain=self.mail_domain,
            now=now,
        )
        return OutgoingEmail(
            ref=ref,
            to=ctx.email,
            from_addr=topic.from_addr,
            raw=to_bytes(mime),
            tags={"message": str(message.id), "topic": message.topic},
        )

    def _still_wanted(
        self, session: Session, occ: Occurrence, ctx: RecipientContext, topic: Topic, now: datetime
    ) -> bool:
        # The task first: finishing a task also retires its rules, and "the task was
        # done" is the reason support staff need to see.
        task = session.get(Task, occ.task_id) if occ.task_id else None
        if task is not None and task.status != "open":
            _drop(occ, None, f"the task was {task.status} before sending")
            return False
        rule = session.get(ReminderRule, occ.rule_id)
        if rule is None or not rule.active or rule.version != occ.rule_version:
            _drop(occ, None, "the rule changed or was removed before sending")
            return False
        decision = ctx.decide(topic, workspace_id=occ.workspace_id, task_id=occ.task_id, now=now)
        # Quiet hours were honoured when the item was deferred; only blocks count now.
        if decision.outcome is Outcome.BLOCKED:
            _drop(occ, decision.layer.value if decision.layer else None, decision.reason)
            return False
        return True

    def _render_items(
        self, session: Session, kept: list[Occurrence], ctx: RecipientContext, now: datetime
    ) -> list[RenderItem]:
        items: list[RenderItem] = []
        for occ in kept:
            if occ.task_id:
                task = session.get(Task, occ.task_id)
                assert task is not None
                items.append(_render_item(session, task))
            elif occ.workspace_id and ctx.recipient is not None:
                zone = resolve_zone(ctx.recipient.timezone)
                for task in digest_tasks(session, occ.workspace_id, zone=zone, now=now):
                    items.append(_render_item(session, task))
        return items


def _render_item(session: Session, task: Task) -> RenderItem:
    workspace = session.get(Workspace, task.workspace_id)
    return RenderItem(
        task_title=task.title,
        task_url=task.url,
        workspace_name=workspace.name if workspace else None,
        due_at=task.due_at,
    )


def _batched_items(condition: Any) -> Any:
    return (
        select(Occurrence)
        .where(condition, col(Occurrence.status) == "batched")
        .order_by(col(Occurrence.fire_at), col(Occurrence.id))
    )


def _load(session: Session, model: Any, ids: set[Any], *, key: Any = None) -> list[Any]:
    """Rows of ``model`` by id, into the session's identity map (for ``session.get``)."""
    if not ids:
        return []
    column = key if key is not None else model.id
    return list(session.scalars(select(model).where(column.in_(ids))))


def _drop(occ: Occurrence, layer: str | None, reason: str) -> None:
    occ.status = "dropped"
    occ.layer = layer
    occ.reason = reason


def _why(topic: str) -> str:
    """The clause after "You get this email because" in the footer (no final period)."""
    if topic == "workspace-digest":
        return "you asked Time Plan for a digest of this workspace"
    return "you set a reminder on this task in Time Plan"
