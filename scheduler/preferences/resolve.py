"""The one preference evaluator: DESIGN §6's written precedence, as a pure function.

An occurrence for (recipient, topic, workspace, task) passes these layers in order, and
the first one that holds it back decides:

1. ``account``     the recipient is missing, deleted, or has no address → blocked
2. ``suppression`` an address-level block in force: complaint, hard bounce, manual,
                   account-deletion tombstone, soft-bounce limit until it expires → blocked
3. ``global``      email reminders turned off, or an ``unsubscribe_all`` suppression → blocked
4. ``topic``       the topic is off for this recipient → blocked
5. ``workspace``   reminders for this workspace are off → blocked
6. ``task``        reminders for this task are off → blocked
7. ``quiet_hours`` inside the recipient's local quiet window → deferred to its end

Decisions the design leaves open, made here:

- Every level must allow; a "no" anywhere blocks, a more specific "yes" never overrides a
  broader "no" (Knock's rule; the prior-art study shows "most specific wins" confuses users).
- An unset *topic* preference means the topic's ``default_enabled``: a default-off topic
  is blocked at the topic layer until the recipient turns it on. Explicitly enabling a
  workspace or task does not turn such a topic on.
- Unset *global*, *workspace* and *task* levels allow: they exist only to say "no", and
  the topic default already decided whether the kind of mail is wanted at all.
- An occurrence with no workspace or task passes those layers.
- An ``essential`` topic skips layers 3–6 (including ``unsubscribe_all``) but never 1–2,
  and it still observes quiet hours: quiet hours only defer, so essential mail is late,
  never lost. (The send stage may still prioritise it under the ramp limit.)
- A suppression whose ``expires_at`` is past is ignored at every layer. When several are
  in force, the most severe names the reason (see ``suppression.SEVERITY``); a reason this
  code does not know still blocks, because failing open would mail a blocked address.

Reasons are sentences for people and never include the email address or a suppression's
``detail`` (an SES diagnostic may quote the address). ``check_layers`` returns the verdict
of every layer, so explain can show all of them; ``resolve`` returns the deciding one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from scheduler.clock import utc
from scheduler.preferences.decision import (
    Decision,
    Layer,
    Outcome,
    PreferenceSet,
    RecipientStatus,
    RecipientView,
    SuppressionReason,
    SuppressionView,
    TopicView,
)
from scheduler.preferences.quiet_hours import quiet_window_end
from scheduler.preferences.suppression import in_force


class Verdict(StrEnum):
    """One layer's answer."""

    ALLOW = "allow"
    BLOCK = "block"
    BYPASS = "bypass"  # an essential topic does not consult this layer
    DEFER = "defer"


@dataclass(frozen=True, slots=True)
class LayerCheck:
    """One layer's verdict with its human reason.

    ``send_at`` is set for ``defer`` only. ``suppression`` is the row that decided a
    ``suppression`` or ``global`` block, so explain can show its ``detail`` and expiry.
    """

    layer: Layer
    verdict: Verdict
    reason: str
    send_at: datetime | None = None
    suppression: SuppressionView | None = None

    @property
    def holds_back(self) -> bool:
        return self.verdict in (Verdict.BLOCK, Verdict.DEFER)


_SUPPRESSION_REASONS: dict[str, str] = {
    SuppressionReason.ACCOUNT_DELETED: "the address belongs to a deleted account (tombstone)",
    SuppressionReason.COMPLAINT: "the recipient reported an earlier email as spam (complaint)",
    SuppressionReason.HARD_BOUNCE: "the address hard-bounced (permanent delivery failure)",
    SuppressionReason.MANUAL: "an operator suppressed the address",
    SuppressionReason.SOFT_BOUNCE: "the address bounced temporarily too often",
}


def check_layers(
    *,
    recipient: RecipientView | None,
    topic: TopicView,
    workspace_id: str | None,
    task_id: str | None,
    preferences: PreferenceSet,
    suppressions: Sequence[SuppressionView],
    now: datetime,
) -> tuple[LayerCheck, ...]:
    """Every layer's verdict, in precedence order (account first, quiet hours last)."""
    now = utc(now)
    active = in_force(suppressions, now)
    preference_checks = (
        _bypassed(topic)
        if topic.essential
        else (
            _check_global(preferences, active),
            _check_topic(topic, preferences),
            _check_scope(Layer.WORKSPACE, "workspace", workspace_id, preferences.workspaces),
            _check_scope(Layer.TASK, "task", task_id, preferences.tasks),
        )
    )
    return (
        _check_account(recipient),
        _check_suppression(active),
        *preference_checks,
        _check_quiet_hours(recipient, now),
    )


def deciding_check(checks: Sequence[LayerCheck]) -> LayerCheck | None:
    """The first layer that blocks or defers, or ``None`` when every layer lets it through."""
    return next((check for check in checks if check.holds_back), None)


def decide(checks: Sequence[LayerCheck], now: datetime) -> Decision:
    """Turn the layers' verdicts into one :class:`Decision`."""
    check = deciding_check(checks)
    if check is None:
        bypassed = any(c.verdict is Verdict.BYPASS for c in checks)
        reason = (
            "essential topic: preferences do not apply and nothing else holds it back"
            if bypassed
            else "every layer allows sending"
        )
        return Decision(Outcome.SEND, None, reason, utc(now))
    if check.verdict is Verdict.DEFER:
        return Decision(Outcome.DEFERRED, check.layer, check.reason, check.send_at)
    return Decision(Outcome.BLOCKED, check.layer, check.reason, None)


def resolve(
    *,
    recipient: RecipientView | None,
    topic: TopicView,
    workspace_id: str | None,
    task_id: str | None,
    preferences: PreferenceSet,
    suppressions: Sequence[SuppressionView],
    now: datetime,
) -> Decision:
    """Decide one occurrence at ``now`` (an aware datetime) by DESIGN §6's precedence."""
    checks = check_layers(
        recipient=recipient,
        topic=topic,
        workspace_id=workspace_id,
        task_id=task_id,
        preferences=preferences,
        suppressions=suppressions,
        now=now,
    )
    return decide(checks, now)


# --- the layers ------------------------------------------------------------------------


def _check_account(recipient: RecipientView | None) -> LayerCheck:
    if recipient is None:
        return _block(Layer.ACCOUNT, "the recipient does not exist")
    if recipient.status != RecipientStatus.ACTIVE:
        state = "deleted" if recipient.status == RecipientStatus.DELETED else "not active"
        return _block(Layer.ACCOUNT, f"recipient {recipient.id!r} is {state}")
    if recipient.email is None or not recipient.email.strip():
        return _block(Layer.ACCOUNT, f"recipient {recipient.id!r} has no email address")
    return _allow(Layer.ACCOUNT, f"recipient {recipient.id!r} is active with an address")


def _check_suppression(active: Sequence[SuppressionView]) -> LayerCheck:
    blocking = [s for s in active if s.reason != SuppressionReason.UNSUBSCRIBE_ALL]
    if not blocking:
        return _allow(Layer.SUPPRESSION, "the address is not suppressed")
    worst = blocking[0]  # in_force sorts most severe first
    reason = _SUPPRESSION_REASONS.get(worst.reason, f"the address is suppressed ({worst.reason})")
    if worst.expires_at is not None:
        reason += f"; suppressed until {_iso(worst.expires_at)}"
    return LayerCheck(Layer.SUPPRESSION, Verdict.BLOCK, reason, suppression=worst)


def _bypassed(topic: TopicView) -> tuple[LayerCheck, ...]:
    reason = f"topic {topic.key!r} is essential: this preference does not apply"
    layers = (Layer.GLOBAL, Layer.TOPIC, Layer.WORKSPACE, Layer.TASK)
    return tuple(LayerCheck(layer, Verdict.BYPASS, reason) for layer in layers)


def _check_global(preferences: PreferenceSet, active: Sequence[SuppressionView]) -> LayerCheck:
    if preferences.email_enabled is False:
        return _block(Layer.GLOBAL, "the recipient turned off all reminder email")
    for suppression in active:
        if suppression.reason == SuppressionReason.UNSUBSCRIBE_ALL:
            return LayerCheck(
                Layer.GLOBAL,
                Verdict.BLOCK,
                "the recipient unsubscribed from all reminder email",
                suppression=suppression,
            )
    return _allow(Layer.GLOBAL, "reminder email is on")


def _check_topic(topic: TopicView, preferences: PreferenceSet) -> LayerCheck:
    choice = preferences.topics.get(topic.key)
    if choice is False:
        return _block(Layer.TOPIC, f"the recipient turned off topic {topic.key!r}")
    if choice is None and not topic.default_enabled:
        return _block(
            Layer.TOPIC,
            f"topic {topic.key!r} is off by default and the recipient has not turned it on",
        )
    source = "the recipient turned it on" if choice else "it is on by default"
    return _allow(Layer.TOPIC, f"topic {topic.key!r} is on: {source}")


def _check_scope(
    layer: Layer, noun: str, scope_id: str | None, choices: Mapping[str, bool]
) -> LayerCheck:
    if scope_id is None:
        return _allow(layer, f"the reminder is not tied to a {noun}")
    if choices.get(scope_id) is False:
        return _block(layer, f"the recipient turned off reminders for {noun} {scope_id!r}")
    return _allow(layer, f"reminders for {noun} {scope_id!r} are on")


def _check_quiet_hours(recipient: RecipientView | None, now: datetime) -> LayerCheck:
    quiet = recipient.quiet_hours if recipient is not None else None
    if recipient is None or quiet is None or quiet.is_empty:
        return _allow(Layer.QUIET_HOURS, "the recipient has no quiet hours")
    end = quiet_window_end(quiet, _zone(recipient), now)
    if end is None:
        return _allow(Layer.QUIET_HOURS, f"outside quiet hours {quiet} ({recipient.timezone})")
    reason = f"inside quiet hours {quiet} ({recipient.timezone}); deferred to {_iso(end)}"
    return LayerCheck(Layer.QUIET_HOURS, Verdict.DEFER, reason, send_at=end)


def _zone(recipient: RecipientView) -> ZoneInfo:
    # Time zones are validated when a recipient is stored; an unknown one here is a bug
    # upstream, and guessing UTC would silently put quiet hours at the wrong time.
    try:
        return ZoneInfo(recipient.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"recipient {recipient.id!r} has an unknown time zone {recipient.timezone!r}"
        ) from exc


def _allow(layer: Layer, reason: str) -> LayerCheck:
    return LayerCheck(layer, Verdict.ALLOW, reason)


def _block(layer: Layer, reason: str) -> LayerCheck:
    return LayerCheck(layer, Verdict.BLOCK, reason)


def _iso(instant: datetime) -> str:
    return utc(instant).strftime("%Y-%m-%dT%H:%M:%SZ")
