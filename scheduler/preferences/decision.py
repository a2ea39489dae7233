"""Value types of the preference decision: what the evaluator reads and what it answers.

These are plain frozen values with no database behind them, so the evaluator in
:mod:`scheduler.preferences.resolve` stays pure: the store loads rows, turns them into
these views, and hands them over together with ``now``.

The string values of :class:`Layer` and :class:`Outcome` are a public API: they are stored
in ``occurrence.layer`` / ``occurrence.status`` and returned by ``/v1/recipients/{id}/explain``
(DESIGN §13). Renaming one is a breaking change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from enum import StrEnum
from types import MappingProxyType


class Layer(StrEnum):
    """The layer that decided an occurrence, in the order DESIGN §6 evaluates them.

    ``ramp`` and ``lateness`` are decided later, by the send stage (ramp-up limit, a
    topic's ``max_lateness``); they are listed here so every stored ``layer`` has one type.
    """

    ACCOUNT = "account"
    SUPPRESSION = "suppression"
    GLOBAL = "global"
    TOPIC = "topic"
    WORKSPACE = "workspace"
    TASK = "task"
    QUIET_HOURS = "quiet_hours"
    RAMP = "ramp"
    LATENESS = "lateness"


class Outcome(StrEnum):
    """What happens to an occurrence (explain's ``decision`` field)."""

    SEND = "send"
    BLOCKED = "blocked"
    DEFERRED = "deferred"
    EXPIRED = "expired"


class RecipientStatus(StrEnum):
    """``recipient.status``; a deleted recipient keeps its row so explain can say why."""

    ACTIVE = "active"
    DELETED = "deleted"


class SuppressionReason(StrEnum):
    """``suppression.reason``. A ``StrEnum``, so a member equals its plain string."""

    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    SOFT_BOUNCE = "soft_bounce"
    UNSUBSCRIBE_ALL = "unsubscribe_all"
    ACCOUNT_DELETED = "account_deleted"
    MANUAL = "manual"


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily local-time window in which nothing is sent.

    ``start`` is inclusive and ``end`` exclusive. ``start > end`` means the window crosses
    midnight (22:00–07:00); ``start == end`` means no window at all, not a 24-hour one,
    so a form that submits two equal times can never silence a recipient for good.
    """

    start: time
    end: time

    def __post_init__(self) -> None:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are local wall times: give naive times")

    @property
    def is_empty(self) -> bool:
        return self.start == self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M}"


@dataclass(frozen=True, slots=True)
class RecipientView:
    """The recipient as the evaluator needs it. ``timezone`` is an IANA name."""

    id: str
    email: str | None
    status: str
    timezone: str
    quiet_hours: QuietHours | None = None


@dataclass(frozen=True, slots=True)
class TopicView:
    """A topic (``task-reminder``, ``workspace-digest``...).

    ``essential`` topics skip the preference layers (global, topic, workspace, task) but
    never account or suppression. ``default_enabled`` is what an unset topic preference means.
    """

    key: str
    essential: bool = False
    default_enabled: bool = True


def _frozen(mapping: Mapping[str, bool]) -> Mapping[str, bool]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class PreferenceSet:
    """One recipient's explicit choices. ``None`` or a missing key means "unset".

    The mappings are copied into read-only proxies so a caller mutating its dict later
    cannot change a decision already taken.
    """

    email_enabled: bool | None = None
    topics: Mapping[str, bool] = field(default_factory=dict)
    workspaces: Mapping[str, bool] = field(default_factory=dict)
    tasks: Mapping[str, bool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "topics", _frozen(self.topics))
        object.__setattr__(self, "workspaces", _frozen(self.workspaces))
        object.__setattr__(self, "tasks", _frozen(self.tasks))


@dataclass(frozen=True, slots=True)
class SuppressionView:
    """One suppression row for the recipient's (normalized) address.

    ``expires_at`` is ``None`` for a permanent suppression; a suppression is in force while
    ``now < expires_at``. ``detail`` (an SES diagnostic, an operator's note) is kept for
    explain but never copied into a decision's reason: it may quote the address.
    """

    reason: str
    expires_at: datetime | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("suppression expires_at must be an aware datetime")


@dataclass(frozen=True, slots=True)
class Decision:
    """The evaluator's answer for one occurrence.

    ``send_at`` is ``now`` for ``send``, the UTC end of the quiet window for ``deferred``,
    and ``None`` for ``blocked``. ``layer`` is ``None`` exactly when nothing held it back.
    ``reason`` is a sentence for people (support staff, the explain API) and never
    contains the email address.
    """

    outcome: Outcome
    layer: Layer | None
    reason: str
    send_at: datetime | None
