"""Pure suppression rules: address keys, when a suppression is in force, soft-bounce limits.

Suppressions belong to an *address*, not a recipient: a complaint from ``Ann@Example.com``
must stop mail to that mailbox whichever account it is attached to next. Rows are keyed
by :func:`email_hash` of the normalized address, so deleting an account can erase the
address itself and leave only a hashed tombstone (``account_deleted``) behind.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from scheduler.clock import utc
from scheduler.preferences.decision import SuppressionReason, SuppressionView

# Only the recipient's own "stop all reminder email" is theirs to undo. Bounces and
# complaints are facts about the mailbox, a deletion is final, and a manual block is an
# operator's call: a resubscribe click must never clear them (prior art §3.6, and
# silent-suite/silentsuite#74 for the bug a resubscribe that clears bounces causes).
RESUBSCRIBE_CLEARS: frozenset[str] = frozenset({SuppressionReason.UNSUBSCRIBE_ALL})

# When several suppressions are in force, the most severe one names the reason. Unknown
# reasons (a newer writer, a typo in a manual row) rank last but still block.
SEVERITY: tuple[str, ...] = (
    SuppressionReason.ACCOUNT_DELETED,
    SuppressionReason.COMPLAINT,
    SuppressionReason.HARD_BOUNCE,
    SuppressionReason.MANUAL,
    SuppressionReason.SOFT_BOUNCE,
)

SOFT_BOUNCE_LIMIT = 3
SOFT_BOUNCE_WINDOW = timedelta(days=7)
SOFT_BOUNCE_COOLOFF = timedelta(days=14)


def normalize_email(addr: str) -> str:
    """The form of an address that suppressions and tombstones are keyed by.

    Surrounding whitespace goes and the *whole* address is lowercased. RFC 5321 §2.4 lets
    a server treat the local part as case-sensitive, but it also says exploiting that
    "impedes interoperability and is discouraged"; SES and the large mailbox providers
    treat addresses case-insensitively in practice. Folding case means a complaint
    from ``Ann@Example.com`` also stops mail to ``ann@example.com``; the cost, two truly
    distinct mailboxes that differ only by case, does not occur in practice.
    https://www.rfc-editor.org/rfc/rfc5321#section-2.4
    """
    normalized = addr.strip().lower()
    if not normalized:
        raise ValueError("an empty email address cannot be normalized")
    return normalized


def email_hash(addr: str) -> str:
    """SHA-256 hex digest of the normalized address (64 lowercase hex characters)."""
    return hashlib.sha256(normalize_email(addr).encode("utf-8")).hexdigest()


def is_in_force(suppression: SuppressionView, now: datetime) -> bool:
    """A suppression blocks while it has no expiry or ``now`` is before its expiry."""
    now = utc(now)
    return suppression.expires_at is None or now < utc(suppression.expires_at)


def in_force(suppressions: Iterable[SuppressionView], now: datetime) -> list[SuppressionView]:
    """The suppressions still in force at ``now``, most severe first."""
    active = [s for s in suppressions if is_in_force(s, now)]
    return sorted(active, key=lambda s: _severity_rank(s.reason))


def clears_on_resubscribe(reason: str) -> bool:
    """Whether a recipient's resubscribe removes a suppression with this reason."""
    return reason in RESUBSCRIBE_CLEARS


def soft_bounce_expiry(
    transient_at: Sequence[datetime],
    *,
    now: datetime,
    limit: int = SOFT_BOUNCE_LIMIT,
    window: timedelta = SOFT_BOUNCE_WINDOW,
    cooloff: timedelta = SOFT_BOUNCE_COOLOFF,
) -> datetime | None:
    """When ``limit`` transient bounces fall within ``window``, suppress until an expiry.

    The expiry is ``cooloff`` after the bounce that reached the limit; with several such
    runs, the latest counts. It depends on the bounce times only, not on when the events
    are processed, so replaying or late-delivered SES events give the same answer. Returns
    ``None`` when no run reaches the limit or the resulting suppression has already
    expired at ``now``. The window is inclusive: bounces exactly ``window`` apart count.

    SES reports these as ``bounceType: Transient``; SES itself never suppresses them
    (https://docs.aws.amazon.com/ses/latest/dg/sending-email-suppression-list.html), so
    repeated ones are limited here to protect the bounce rate the ramp watches.
    """
    if limit < 1:
        raise ValueError("soft-bounce limit must be at least 1")
    if window < timedelta(0) or cooloff <= timedelta(0):
        raise ValueError("soft-bounce window must be >= 0 and cool-off > 0")
    times = sorted(utc(t) for t in transient_at)
    expiry: datetime | None = None
    for last in range(limit - 1, len(times)):
        if times[last] - times[last - limit + 1] <= window:
            expiry = times[last] + cooloff
    if expiry is None or expiry <= utc(now):
        return None
    return expiry


def _severity_rank(reason: str) -> int:
    return SEVERITY.index(reason) if reason in SEVERITY else len(SEVERITY)
