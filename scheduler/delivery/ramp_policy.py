"""Ramp-up policy for a sending stream: pure decisions, no database, no clock.

Once a day the ramp job reads yesterday's figures for a stream (``send_day``) and asks
:func:`next_day` what the stream's daily limit and per-second rate should be. The store
applies the returned state and audits the change (DESIGN.md §9).

Why a ramp at all: SES's own quotas exist "to gradually ramp up your sending activity and
decrease the likelihood that email providers block your emails because of sudden,
unexpected spikes", and both AWS and Gmail advise increasing volume gradually
(https://docs.aws.amazon.com/ses/latest/dg/manage-sending-quotas.html,
https://support.google.com/a/answer/81126).

Thresholds come from the SES sending review FAQ
(https://docs.aws.amazon.com/ses/latest/dg/faqs-enforcement.html): keep bounces under 2%
and complaints under 0.1%; at 5% bounces or 0.1% complaints the account goes under review.
We pause at the review thresholds and want "clean" to mean well inside them.

The other pure pieces of the send-side limiter (waiting order, expiry, per-second pacing)
live in :mod:`scheduler.delivery.pacing`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from enum import IntEnum, StrEnum
from typing import Any

from scheduler.errors import ConfigurationError, InvalidInput

# SES sending review FAQ: "If your bounce rate is 5% or greater, we'll place your account
# under review"; the same for a complaint rate of 0.1% or greater.
SES_REVIEW_BOUNCE_RATE = 0.05
SES_REVIEW_COMPLAINT_RATE = 0.001

# A 1-2-5 ladder: each step is 2x-2.5x the last. An explicit ladder (rather than a growth
# factor) gives round numbers operators can read in the audit log, and a "step" that means
# the same thing tomorrow as today. From 200 (the SES sandbox's 24-hour quota, so a new
# account starts where SES itself starts it) eleven clean days reach a million a day.
DEFAULT_LADDER: tuple[int, ...] = (
    200,
    500,
    1_000,
    2_000,
    5_000,
    10_000,
    20_000,
    50_000,
    100_000,
    200_000,
    500_000,
    1_000_000,
)

_UNLIMITED = -1.0  # SES SendQuota: "A value of -1 signifies an unlimited quota".


class RampMode(StrEnum):
    AUTO = "auto"  # the policy moves the limit
    MANUAL = "manual"  # an operator set the limit; the policy only pauses at review thresholds
    PAUSED = "paused"  # nothing is sent until an operator resumes


class RampAction(StrEnum):
    GROW = "grow"
    HOLD = "hold"
    CUT = "cut"
    PAUSE = "pause"
    NONE = "none"  # manual or paused mode: the policy does not move the stream


class DayHealth(IntEnum):
    """How yesterday looked, worst first wins. Ordered so ``max`` picks the worse."""

    CLEAN = 0
    GREY = 1
    BAD = 2
    REVIEW = 3


@dataclass(frozen=True)
class Thresholds:
    """A bounce rate and a complaint rate; a day reaches the band if either figure does."""

    bounce: float
    complaint: float

    def reached_by(self, figures: DayFigures) -> bool:
        return figures.bounce_rate >= self.bounce or figures.complaint_rate >= self.complaint


@dataclass(frozen=True)
class RampConfig:
    """Tunable policy. Every rate is a fraction (0.02 is 2%).

    - ``ladder``: the daily limits auto mode climbs, one step per clean day; the first
      step is the start limit and needs no evidence.
    - ``min_volume``: a day with fewer sends is not evidence either way (one typo'd address
      in ten sends is a 10% bounce rate); SES too judges over a "representative volume".
    - ``min_fill_to_grow``: a clean day must also have used this share of the limit to
      earn the next step. A clean day at 60 sends says nothing about 100,000, and growing
      an unused limit would let a sudden spike through, which is what the ramp exists to stop.
    - ``clean``: under both rates, a day is clean (SES's "maintain a bounce rate below
      2%"; complaints at half of SES's 0.1%).
    - ``cut``: at or over either, a day is bad and the limit goes back ``cut_steps``
      steps; between clean and cut the day is grey and the limit holds.
    - ``review``: at or over either, the stream pauses (SES's review thresholds).
    - ``rate_per_second``: the least per-second rate auto mode uses (SES's sandbox
      ``MaxSendRate`` is 1); above it the rate follows the limit so that a full day's limit
      could drain in ``drain_seconds``: reminders cluster at the top of the local hour and
      an hour's lateness is the most we want pacing alone to cause.
    """

    ladder: tuple[int, ...] = DEFAULT_LADDER
    min_volume: int = 50
    min_fill_to_grow: float = 0.25
    clean: Thresholds = Thresholds(bounce=0.02, complaint=0.0005)
    cut: Thresholds = Thresholds(bounce=0.03, complaint=0.0008)
    review: Thresholds = Thresholds(
        bounce=SES_REVIEW_BOUNCE_RATE, complaint=SES_REVIEW_COMPLAINT_RATE
    )
    cut_steps: int = 2
    rate_per_second: float = 1.0
    drain_seconds: int = 3600

    def __post_init__(self) -> None:
        rungs = self.ladder
        if not rungs or rungs[0] < 1 or any(b <= a for a, b in itertools.pairwise(rungs)):
            raise ConfigurationError("ramp ladder must be positive and strictly increasing")
        bands = (self.clean, self.cut, self.review)
        for kind, (clean, cut, review) in (
            ("bounce", tuple(band.bounce for band in bands)),
            ("complaint", tuple(band.complaint for band in bands)),
        ):
            if not 0 < clean <= cut <= review <= 1:
                raise ConfigurationError(f"ramp {kind} rates need 0 < clean <= cut <= review <= 1")
        if self.min_volume < 1 or self.cut_steps < 1 or self.drain_seconds < 1:
            raise ConfigurationError("ramp min_volume, cut_steps and drain_seconds must be >= 1")
        if not 0 <= self.min_fill_to_grow <= 1:
            raise ConfigurationError("ramp min_fill_to_grow must be between 0 and 1")
        if not (math.isfinite(self.rate_per_second) and self.rate_per_second > 0):
            raise ConfigurationError("ramp rate_per_second must be a positive number")

    @property
    def start_daily_limit(self) -> int:
        return self.ladder[0]

    def step_for(self, daily_limit: int) -> int:
        """Index of the highest step at or below ``daily_limit`` (0 below the first)."""
        return max((i for i, rung in enumerate(self.ladder) if rung <= daily_limit), default=0)

    def auto_rate(self, daily_limit: int) -> float:
        """The per-second rate auto mode pairs with a daily limit (before the SES cap).

        Rounded down to hundredths so the audit log reads 13.88/s, not 13.888888888888889.
        """
        return max(self.rate_per_second, math.floor(daily_limit * 100 / self.drain_seconds) / 100)


@dataclass(frozen=True)
class Quota:
    """SES ``get_account()["SendQuota"]``: -1 in either field means unlimited."""

    max_24h: float
    max_rate: float

    def __post_init__(self) -> None:
        if not (self.max_24h == _UNLIMITED or self.max_24h >= 0):  # also refuses NaN
            raise ValueError(f"max_24h must be -1 or >= 0, got {self.max_24h}")
        if not (self.max_rate == _UNLIMITED or self.max_rate > 0):
            raise ValueError(f"max_rate must be -1 or > 0, got {self.max_rate}")

    @classmethod
    def from_send_quota(cls, send_quota: Mapping[str, float]) -> Quota:
        return cls(float(send_quota["Max24HourSend"]), float(send_quota["MaxSendRate"]))

    @property
    def daily_ceiling(self) -> int | None:
        """Whole messages per 24 hours, or None when unlimited (or infinite)."""
        if self.max_24h == _UNLIMITED or math.isinf(self.max_24h):
            return None
        return math.floor(self.max_24h)

    @property
    def rate_ceiling(self) -> float | None:
        return None if self.max_rate == _UNLIMITED else self.max_rate


@dataclass(frozen=True)
class RampState:
    """A stream's ramp: ``reason`` says why the limit and mode are what they are."""

    mode: RampMode
    daily_limit: int
    rate_per_second: float
    step: int
    reason: str

    def __post_init__(self) -> None:
        if self.daily_limit < 0 or self.step < 0:
            raise ValueError("daily_limit and step must be >= 0")
        if not (math.isfinite(self.rate_per_second) and self.rate_per_second > 0):
            raise ValueError(f"rate_per_second must be > 0, got {self.rate_per_second}")

    def as_dict(self) -> dict[str, Any]:
        """Plain values: the ``ramp`` row's columns, an audit entry's old/new, a JSON body."""
        return {
            "mode": str(self.mode),
            "daily_limit": self.daily_limit,
            "rate_per_second": self.rate_per_second,
            "step": self.step,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class DayFigures:
    """One stream's counts for one day (a ``send_day`` row).

    ``bounced`` should count what SES counts: permanent bounces, not transient ones and
    not ``OnAccountSuppressionList`` (which "does not count toward the bounce rate").
    ``rejected`` (SES refused the message, e.g. a virus) is kept but judged by neither rate.
    """

    day: date
    sent: int
    delivered: int
    bounced: int
    complained: int
    rejected: int

    def __post_init__(self) -> None:
        counts = (self.sent, self.delivered, self.bounced, self.complained, self.rejected)
        if min(counts) < 0:
            raise ValueError("day figures must be >= 0")

    @property
    def bounce_rate(self) -> float:
        """Bounces over sends: the base SES uses, and every send can bounce."""
        return self.bounced / self.sent if self.sent else 0.0

    @property
    def complaint_base(self) -> int:
        """Delivered, or sent when no delivery events were counted.

        Only a delivered message can draw a complaint, so dividing by sends would dilute
        the complaint rate by that day's bounces: the worse the day, the better it would
        look. Sends stand in when the day has no delivery events at all (a configuration
        set without DELIVERY events, or the outbox sender).
        """
        return self.delivered or self.sent

    @property
    def complaint_rate(self) -> float:
        base = self.complaint_base
        return self.complained / base if base else 0.0


@dataclass(frozen=True)
class RampDecision:
    action: RampAction
    state: RampState
    reason: str


def initial_state(config: RampConfig, quota: Quota | None) -> RampState:
    """A new stream: auto mode on the first step, inside the SES quota."""
    limit = _cap(config.start_daily_limit, quota)
    return RampState(
        mode=RampMode.AUTO,
        daily_limit=limit,
        rate_per_second=_cap_rate(config.auto_rate(limit), quota),
        step=config.step_for(limit),
        reason="new stream: first step of the ramp",
    )


# --- judging a day -------------------------------------------------------------------


def day_health(figures: DayFigures, config: RampConfig) -> DayHealth:
    """Where a day falls; the worse of its two rates decides."""
    if config.review.reached_by(figures):
        return DayHealth.REVIEW
    if config.cut.reached_by(figures):
        return DayHealth.BAD
    return DayHealth.GREY if config.clean.reached_by(figures) else DayHealth.CLEAN


def _figures_text(figures: DayFigures) -> str:
    base_name = "delivered" if figures.delivered else "sent"
    return (
        f"{figures.day.isoformat()}: bounce {_pct(figures.bounce_rate, 2)} "
        f"({figures.bounced:,} of {figures.sent:,} sent), complaint "
        f"{_pct(figures.complaint_rate, 3)} ({figures.complained:,} of "
        f"{figures.complaint_base:,} {base_name})"
    )


def _breaches(figures: DayFigures, limits: Thresholds, what: str) -> str:
    """Name each figure at or over ``limits``, e.g. for a pause reason."""
    base_name = "delivered" if figures.delivered else "sent"
    parts = []
    if figures.bounce_rate >= limits.bounce:
        parts.append(
            f"bounce rate {_pct(figures.bounce_rate, 2)} ({figures.bounced:,} of "
            f"{figures.sent:,} sent) is at or over {what} of {_pct(limits.bounce)}"
        )
    if figures.complaint_rate >= limits.complaint:
        parts.append(
            f"complaint rate {_pct(figures.complaint_rate, 3)} ({figures.complained:,} of "
            f"{figures.complaint_base:,} {base_name}) is at or over {what} of "
            f"{_pct(limits.complaint)}"
        )
    return f"{figures.day.isoformat()}: " + " and ".join(parts)


def _pct(rate: float, digits: int | None = None) -> str:
    return f"{rate * 100:g}%" if digits is None else f"{rate * 100:.{digits}f}%"


# --- the daily decision --------------------------------------------------------------


def next_day(
    state: RampState,
    yesterday: DayFigures | None,
    config: RampConfig,
    quota: Quota | None,
) -> RampDecision:
    """Decide the stream's ramp for today from yesterday's figures.

    Auto: grow one step on a clean day with enough volume; hold on a grey day, a quiet
    day or no figures; cut ``cut_steps`` steps on a bad day; pause at SES's review
    thresholds. Manual: the operator's limit stands, but the review thresholds still pause
    the stream: reaching them puts the whole SES account under review, and a manual limit
    is a statement about volume, not leave to keep sending through failing reputation
    (``ramp resume`` undoes it). Paused: stays paused. In every mode the limit and rate
    are kept inside the SES quota, which is a hard ceiling (SES refuses the excess).
    """
    evidence = yesterday if yesterday is not None and yesterday.sent >= config.min_volume else None
    health = day_health(evidence, config) if evidence is not None else None
    if state.mode is RampMode.PAUSED:
        reason = f"paused ({state.reason}): stays paused until an operator resumes"
        return _settle(state, RampAction.NONE, state, reason, config, quota)
    if evidence is not None and health is DayHealth.REVIEW:
        reason = _breaches(evidence, config.review, "SES's review threshold") + ": pausing"
        return _settle(
            state, RampAction.PAUSE, replace(state, mode=RampMode.PAUSED), reason, config, quota
        )
    if state.mode is RampMode.MANUAL:
        note = f" ({_figures_text(evidence)})" if evidence is not None else ""
        reason = f"manual: the limit stays {state.daily_limit:,}/day{note}"
        return _settle(state, RampAction.NONE, state, reason, config, quota)
    if evidence is None:
        return _auto_without_evidence(state, yesterday, config, quota)
    if health is DayHealth.BAD:
        return _auto_cut(state, evidence, config, quota)
    if health is DayHealth.GREY:
        reason = _breaches(evidence, config.clean, "the clean limit")
        return _auto_hold(state, f"grey day ({reason})", config, quota)
    return _auto_clean(state, evidence, config, quota)


def _auto_without_evidence(
    state: RampState, yesterday: DayFigures | None, config: RampConfig, quota: Quota | None
) -> RampDecision:
    if yesterday is None:
        why = "no figures for yesterday"
    else:
        why = (
            f"only {yesterday.sent:,} sent on {yesterday.day.isoformat()}, "
            f"fewer than the {config.min_volume:,} needed to judge"
        )
    if state.daily_limit < config.start_daily_limit:
        # The first step needs no evidence: it is where a brand-new stream starts.
        return _auto_grow(state, f"{why}; the first step needs no evidence", config, quota)
    return _auto_hold(state, why, config, quota)


def _auto_clean(
    state: RampState, figures: DayFigures, config: RampConfig, quota: Quota | None
) -> RampDecision:
    summary = f"clean day ({_figures_text(figures)})"
    needed = config.min_fill_to_grow * state.daily_limit
    if figures.sent < needed:
        share = _pct(config.min_fill_to_grow)
        why = f"{summary}, but {figures.sent:,} sent is under {share} of the limit"
        return _auto_hold(state, why, config, quota)
    return _auto_grow(state, summary, config, quota)


def _auto_grow(state: RampState, why: str, config: RampConfig, quota: Quota | None) -> RampDecision:
    above = [rung for rung in config.ladder if rung > state.daily_limit]
    if not above:
        return _auto_hold(state, f"{why}; already at the top of the ladder", config, quota)
    ceiling = quota.daily_ceiling if quota is not None else None
    if ceiling is not None and ceiling <= state.daily_limit:
        return _auto_hold(state, f"{why}; at the SES quota of {ceiling:,}/day", config, quota)
    target = above[0]
    capped = (
        ""
        if ceiling is None or target <= ceiling
        else f", capped at the SES quota of {ceiling:,}/day"
    )
    new_limit = _cap(target, quota)
    reason = f"{why}: {state.daily_limit:,} -> {new_limit:,}/day{capped}"
    return _settle(state, RampAction.GROW, _auto(state, new_limit, config), reason, config, quota)


def _auto_cut(
    state: RampState, figures: DayFigures, config: RampConfig, quota: Quota | None
) -> RampDecision:
    step = max(0, config.step_for(state.daily_limit) - config.cut_steps)
    new_limit = min(config.ladder[step], state.daily_limit)
    why = f"bad day ({_breaches(figures, config.cut, 'the cut threshold')})"
    if new_limit == state.daily_limit:
        reason = f"{why}; already at the lowest step, {new_limit:,}/day"
    else:
        reason = f"{why}: {state.daily_limit:,} -> {new_limit:,}/day"
    return _settle(state, RampAction.CUT, _auto(state, new_limit, config), reason, config, quota)


def _auto_hold(state: RampState, why: str, config: RampConfig, quota: Quota | None) -> RampDecision:
    reason = f"{why}: holding at {state.daily_limit:,}/day"
    return _settle(
        state, RampAction.HOLD, _auto(state, state.daily_limit, config), reason, config, quota
    )


def _auto(state: RampState, daily_limit: int, config: RampConfig) -> RampState:
    return replace(
        state,
        daily_limit=daily_limit,
        rate_per_second=config.auto_rate(daily_limit),
        step=config.step_for(daily_limit),
    )


def _settle(
    old: RampState,
    action: RampAction,
    new: RampState,
    reason: str,
    config: RampConfig,
    quota: Quota | None,
) -> RampDecision:
    """Apply the SES quota ceiling, and record ``reason`` on the state if anything moved.

    A ceiling that lowers the limit below yesterday's is reported as a cut in any mode:
    the limit went down, and the audit log should say so even though nobody chose it.
    """
    limit = _cap(new.daily_limit, quota)
    if limit < new.daily_limit:
        reason += f"; the SES quota allows only {limit:,}/day"
        if limit < old.daily_limit and action in (RampAction.NONE, RampAction.HOLD):
            action = RampAction.CUT
            reason += f": {old.daily_limit:,} -> {limit:,}/day"
    settled = replace(
        new,
        daily_limit=limit,
        rate_per_second=_cap_rate(new.rate_per_second, quota),
        step=new.step if limit == new.daily_limit else config.step_for(limit),
    )
    if _without_reason(settled) == _without_reason(old):
        return RampDecision(action=action, state=old, reason=reason)
    return RampDecision(action=action, state=replace(settled, reason=reason), reason=reason)


def _without_reason(state: RampState) -> RampState:
    return replace(state, reason="")


def _cap(limit: int, quota: Quota | None) -> int:
    ceiling = quota.daily_ceiling if quota is not None else None
    return limit if ceiling is None else min(limit, ceiling)


def _cap_rate(rate: float, quota: Quota | None) -> float:
    ceiling = quota.rate_ceiling if quota is not None else None
    return rate if ceiling is None else min(rate, ceiling)


# --- operator changes ----------------------------------------------------------------


MAX_DAILY_LIMIT = 2**31 - 1


def validate_manual_change(
    daily: int, rate: float | None, reason: str | None, quota: Quota | None
) -> None:
    """Refuse an operator's ``ramp set`` that SES would refuse or the audit log can't explain.

    ``rate`` None keeps the current rate. A daily limit of 0 is allowed (it sends nothing
    without changing the mode). Raises :class:`InvalidInput` naming the field.
    """
    if daily < 0:
        raise InvalidInput(f"must be 0 or more, got {daily}", field="daily_limit")
    if daily > MAX_DAILY_LIMIT:  # ramp.daily_limit is a 32-bit INTEGER column
        raise InvalidInput(f"must be at most {MAX_DAILY_LIMIT:,}", field="daily_limit")
    ceiling = quota.daily_ceiling if quota is not None else None
    if ceiling is not None and daily > ceiling:
        raise InvalidInput(
            f"{daily:,} is above the SES quota of {ceiling:,} per 24 hours", field="daily_limit"
        )
    if rate is not None:
        if not (math.isfinite(rate) and rate > 0):
            raise InvalidInput(f"must be a number above 0, got {rate}", field="rate_per_second")
        rate_ceiling = quota.rate_ceiling if quota is not None else None
        if rate_ceiling is not None and rate > rate_ceiling:
            raise InvalidInput(
                f"{rate:g}/s is above the SES maximum send rate of {rate_ceiling:g}/s",
                field="rate_per_second",
            )
    if reason is None or not reason.strip():
        raise InvalidInput("say why: every ramp change is audited", field="reason")


# --- for people ------------------------------------------------------------------------


def describe(
    state: RampState, yesterday: DayFigures | None, config: RampConfig, quota: Quota | None
) -> str:
    """One line for ``reminders ramp show``: where the stream is and what tomorrow brings."""
    decision = next_day(state, yesterday, config, quota)
    where = f"{state.mode} at {state.daily_limit:,}/day, {state.rate_per_second:g}/s"
    if state.daily_limit >= config.start_daily_limit:
        where += f" (step {config.step_for(state.daily_limit) + 1} of {len(config.ladder)})"
    if quota is not None:
        ceiling = quota.daily_ceiling
        where += f", SES quota {'unlimited' if ceiling is None else f'{ceiling:,}/day'}"
    return f"{where}; next: {decision.action} - {decision.reason}"
