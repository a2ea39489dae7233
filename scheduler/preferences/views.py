"""Load what the pure evaluator reads, for many recipients at once (no N+1 queries).

Rows become the frozen views of ``decision.py``; the evaluator never sees a session.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from sqlmodel import col

from scheduler.preferences.decision import (
    Decision,
    PreferenceSet,
    QuietHours,
    RecipientView,
    SuppressionReason,
    SuppressionView,
    TopicView,
)
from scheduler.preferences.resolve import resolve
from scheduler.preferences.suppression import email_hash
from scheduler.tables import Preference, Recipient, Suppression, Topic


@dataclass(frozen=True)
class RecipientContext:
    """One recipient as the evaluator and the renderer need it."""

    recipient: RecipientView | None
    email: str | None
    locale: str
    preferences: PreferenceSet
    suppressions: tuple[SuppressionView, ...]

    def decide(
        self, topic: Topic, *, workspace_id: str | None, task_id: str | None, now: datetime
    ) -> Decision:
        """The evaluator's answer for this recipient (decide stage, send re-check, explain)."""
        return resolve(
            recipient=self.recipient,
            topic=topic_view(topic),
            workspace_id=workspace_id,
            task_id=task_id,
            preferences=self.preferences,
            suppressions=self.suppressions,
            now=now,
        )


def late_reason(topic: Topic, fire_at: datetime, at: datetime) -> str | None:
    """Why an occurrence due at ``fire_at`` is too late to send at ``at``, or None."""
    late = at - fire_at
    if late <= timedelta(seconds=topic.max_lateness_seconds):
        return None
    return f"{int(late.total_seconds() // 60)} min late, past the topic's limit"


def recipient_view(row: Recipient) -> RecipientView:
    quiet = None
    if row.quiet_start and row.quiet_end:
        quiet = QuietHours(time.fromisoformat(row.quiet_start), time.fromisoformat(row.quiet_end))
    return RecipientView(
        id=row.id, email=row.email, status=row.status, timezone=row.timezone, quiet_hours=quiet
    )


def preference_set(rows: Iterable[Preference]) -> PreferenceSet:
    email_enabled: bool | None = None
    scoped: dict[str, dict[str, bool]] = {"topic": {}, "workspace": {}, "task": {}}
    for row in rows:
        if row.scope == "global":
            email_enabled = row.email_enabled
        elif row.scope in scoped:
            scoped[row.scope][row.scope_id] = row.email_enabled
    return PreferenceSet(
        email_enabled=email_enabled,
        topics=scoped["topic"],
        workspaces=scoped["workspace"],
        tasks=scoped["task"],
    )


def load_topics(session: Session) -> dict[str, Topic]:
    return {row.key: row for row in session.scalars(select(Topic))}


def topic_view(row: Topic) -> TopicView:
    return TopicView(key=row.key, essential=row.essential, default_enabled=row.default_enabled)


def load_contexts(session: Session, recipient_ids: Iterable[str]) -> dict[str, RecipientContext]:
    ids = sorted(set(recipient_ids))
    if not ids:
        return {}
    recipients = {
        r.id: r for r in session.scalars(select(Recipient).where(col(Recipient.id).in_(ids)))
    }
    prefs: dict[str, list[Preference]] = defaultdict(list)
    for pref in session.scalars(select(Preference).where(col(Preference.recipient_id).in_(ids))):
        prefs[pref.recipient_id].append(pref)
    hashes = {rid: email_hash(r.email) for rid, r in recipients.items() if r.email}
    by_hash: dict[str, list[Suppression]] = defaultdict(list)
    if hashes:
        query = select(Suppression).where(
            col(Suppression.email_hash).in_(set(hashes.values())),
            or_(
                col(Suppression.reason) != SuppressionReason.ACCOUNT_DELETED,
                col(Suppression.recipient_id).in_(ids),
            ),
        )
        for sup in session.scalars(query):
            by_hash[sup.email_hash].append(sup)
    contexts: dict[str, RecipientContext] = {}
    for rid in ids:
        row = recipients.get(rid)
        sups = by_hash.get(hashes.get(rid, ""), [])
        contexts[rid] = RecipientContext(
            recipient=recipient_view(row) if row else None,
            email=row.email if row else None,
            locale=row.locale if row else "en",
            preferences=preference_set(prefs.get(rid, [])),
            suppressions=tuple(
                SuppressionView(reason=s.reason, expires_at=s.expires_at, detail=s.detail)
                for s in sups
                # A deletion tombstone belongs to the account that was deleted only: a
                # new account with the same address is judged by complaints and bounces.
                if s.reason != SuppressionReason.ACCOUNT_DELETED or s.recipient_id == rid
            ),
        )
    return contexts
