"""Every combination of the evaluator's inputs, checked against a small precedence table.

The expected answer comes from ``PRECEDENCE`` below: DESIGN §6 restated as one predicate
per layer over the *labels* of a case ("suppression is complaint", "topic unset and
default off"), not over the evaluator's inputs, so it shares no code with
``scheduler.preferences.resolve``. The first predicate that holds names the layer.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import pytest

from scheduler.preferences.decision import (
    Decision,
    Layer,
    Outcome,
    PreferenceSet,
    QuietHours,
    RecipientView,
    SuppressionView,
    TopicView,
)
from scheduler.preferences.resolve import (
    LayerCheck,
    Verdict,
    check_layers,
    deciding_check,
    resolve,
)

ADDRESS = "Ann.Example@Example.com"

# Berlin in January is UTC+1: 23:30 local is inside 22:00–07:00, which ends at 06:00Z.
NOW_QUIET = datetime(2026, 1, 15, 22, 30, tzinfo=UTC)
NOW_AWAKE = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
QUIET_END = datetime(2026, 1, 16, 6, 0, tzinfo=UTC)

RECIPIENTS = ("missing", "deleted", "no_email", "blank_email", "active")
SUPPRESSIONS = (
    "none",
    "complaint",
    "hard_bounce",
    "soft_bounce",
    "soft_bounce_expired",
    "manual",
    "manual_expired",
    "account_deleted",
    "unsubscribe_all",
    "unsubscribe_all_expired",
)
TRI = ("on", "off", "unset")


@dataclass(frozen=True)
class Case:
    recipient: str
    suppression: str
    global_pref: str
    topic_pref: str
    topic_default: str
    workspace_pref: str
    task_pref: str
    essential: bool
    quiet: bool


# --- the reference: DESIGN §6 as a table ----------------------------------------------

HARD_SUPPRESSIONS = {"complaint", "hard_bounce", "soft_bounce", "manual", "account_deleted"}

PRECEDENCE: tuple[tuple[Layer, Callable[[Case], bool]], ...] = (
    (Layer.ACCOUNT, lambda c: c.recipient != "active"),
    (Layer.SUPPRESSION, lambda c: c.suppression in HARD_SUPPRESSIONS),
    (
        Layer.GLOBAL,
        lambda c: (
            not c.essential and (c.global_pref == "off" or c.suppression == "unsubscribe_all")
        ),
    ),
    (
        Layer.TOPIC,
        lambda c: (
            not c.essential
            and (c.topic_pref == "off" or (c.topic_pref == "unset" and c.topic_default == "off"))
        ),
    ),
    (Layer.WORKSPACE, lambda c: not c.essential and c.workspace_pref == "off"),
    (Layer.TASK, lambda c: not c.essential and c.task_pref == "off"),
    (Layer.QUIET_HOURS, lambda c: c.quiet),
)


def expected(case: Case) -> tuple[Outcome, Layer | None, datetime | None]:
    for layer, holds_back in PRECEDENCE:
        if holds_back(case):
            if layer is Layer.QUIET_HOURS:
                return Outcome.DEFERRED, layer, QUIET_END
            return Outcome.BLOCKED, layer, None
    return Outcome.SEND, None, NOW_QUIET if case.quiet else NOW_AWAKE


# --- building the evaluator's inputs from a case's labels ------------------------------


def _recipient(label: str) -> RecipientView | None:
    email = {"no_email": None, "blank_email": "  "}.get(label, ADDRESS)
    if label == "missing":
        return None
    return RecipientView(
        id="u1",
        email=email,
        status="deleted" if label == "deleted" else "active",
        timezone="Europe/Berlin",
        quiet_hours=QuietHours(time(22, 0), time(7, 0)),
    )


def _suppressions(label: str, now: datetime) -> list[SuppressionView]:
    if label == "none":
        return []
    reason = label.removesuffix("_expired")
    if label.endswith("_expired"):
        return [SuppressionView(reason, now - timedelta(seconds=1), detail=ADDRESS)]
    # A soft bounce is always time-limited; the others here are permanent.
    expires = now + timedelta(days=3) if reason == "soft_bounce" else None
    return [SuppressionView(reason, expires, detail=f"550 5.1.1 <{ADDRESS}>")]


def _tri(label: str) -> bool | None:
    return {"on": True, "off": False, "unset": None}[label]


def _maybe(key: str, label: str) -> dict[str, bool]:
    value = _tri(label)
    return {} if value is None else {key: value}


def _run(case: Case) -> Decision:
    now = NOW_QUIET if case.quiet else NOW_AWAKE
    preferences = PreferenceSet(
        email_enabled=_tri(case.global_pref),
        topics=_maybe("task-reminder", case.topic_pref) | {"other-topic": False},
        workspaces=_maybe("w1", case.workspace_pref) | {"w2": False},
        tasks=_maybe("t1", case.task_pref) | {"t2": False},
    )
    return resolve(
        recipient=_recipient(case.recipient),
        topic=TopicView(
            "task-reminder", essential=case.essential, default_enabled=case.topic_default == "on"
        ),
        workspace_id="w1",
        task_id="t1",
        preferences=preferences,
        suppressions=_suppressions(case.suppression, now),
        now=now,
    )


def _cases(recipient: str, suppression: str) -> Iterator[Case]:
    for rest in itertools.product(TRI, TRI, ("on", "off"), TRI, TRI, (False, True), (False, True)):
        yield Case(recipient, suppression, *rest)


@pytest.mark.parametrize(("recipient", "suppression"), itertools.product(RECIPIENTS, SUPPRESSIONS))
def test_every_combination_matches_the_precedence_table(recipient: str, suppression: str) -> None:
    mismatches = []
    count = 0
    for case in _cases(recipient, suppression):
        count += 1
        decision = _run(case)
        want = expected(case)
        got = (decision.outcome, decision.layer, decision.send_at)
        if got != want:
            mismatches.append((case, want, got, decision.reason))
        # The reason is for people: always present, never the address (nor its detail).
        assert decision.reason.strip()
        assert "@" not in decision.reason
    assert count == 3 * 3 * 2 * 3 * 3 * 2 * 2
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:3]}"


def test_the_matrix_reaches_every_outcome_and_layer() -> None:
    """Guard against a reference table that can never reach some layer."""
    seen = {
        expected(case)[:2]
        for recipient, suppression in itertools.product(RECIPIENTS, SUPPRESSIONS)
        for case in _cases(recipient, suppression)
    }
    layers = {layer for _, layer in seen}
    assert layers == {*(layer for layer, _ in PRECEDENCE), None}
    assert {outcome for outcome, _ in seen} == {Outcome.SEND, Outcome.BLOCKED, Outcome.DEFERRED}


# --- reasons name what decided ---------------------------------------------------------


def _decide(**overrides: object) -> Decision:
    arguments: dict[str, object] = {
        "recipient": _recipient("active"),
        "topic": TopicView("task-reminder"),
        "workspace_id": "w1",
        "task_id": "t1",
        "preferences": PreferenceSet(),
        "suppressions": [],
        "now": NOW_AWAKE,
    }
    arguments.update(overrides)
    return resolve(**arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("preferences", "layer", "fragment"),
    [
        (PreferenceSet(email_enabled=False), Layer.GLOBAL, "turned off all reminder email"),
        (PreferenceSet(topics={"task-reminder": False}), Layer.TOPIC, "topic 'task-reminder'"),
        (PreferenceSet(workspaces={"w1": False}), Layer.WORKSPACE, "for workspace 'w1'"),
        (PreferenceSet(tasks={"t1": False}), Layer.TASK, "for task 't1'"),
    ],
)
def test_a_block_reason_names_the_scope(
    preferences: PreferenceSet, layer: Layer, fragment: str
) -> None:
    decision = _decide(preferences=preferences)
    assert decision == Decision(Outcome.BLOCKED, layer, decision.reason, None)
    assert fragment in decision.reason


@pytest.mark.parametrize(
    ("reason", "fragment"),
    [
        ("complaint", "spam"),
        ("hard_bounce", "hard-bounced"),
        ("manual", "operator"),
        ("account_deleted", "deleted account"),
        ("soft_bounce", "until 2026-01-18T12:00:00Z"),
        ("some_future_reason", "some_future_reason"),
    ],
)
def test_a_suppression_reason_says_why_but_not_the_detail(reason: str, fragment: str) -> None:
    suppression = SuppressionView(
        reason,
        NOW_AWAKE + timedelta(days=3) if reason == "soft_bounce" else None,
        detail="smtp; 550 mailbox ann@example.com unknown",
    )
    decision = _decide(suppressions=[suppression])
    assert (decision.outcome, decision.layer) == (Outcome.BLOCKED, Layer.SUPPRESSION)
    assert fragment in decision.reason
    assert "550" not in decision.reason


def test_the_most_severe_suppression_names_the_reason() -> None:
    suppressions = [
        SuppressionView("soft_bounce", NOW_AWAKE + timedelta(days=1)),
        SuppressionView("unsubscribe_all"),
        SuppressionView("complaint"),
        SuppressionView("hard_bounce"),
    ]
    checks = check_layers(
        recipient=_recipient("active"),
        topic=TopicView("task-reminder"),
        workspace_id=None,
        task_id=None,
        preferences=PreferenceSet(),
        suppressions=suppressions,
        now=NOW_AWAKE,
    )
    deciding = deciding_check(checks)
    assert deciding is not None
    assert deciding.suppression == SuppressionView("complaint")


def test_a_suppression_ends_exactly_at_its_expiry() -> None:
    expiry = NOW_AWAKE + timedelta(minutes=1)
    suppression = SuppressionView("soft_bounce", expiry)
    assert _decide(suppressions=[suppression], now=expiry - timedelta(microseconds=1)).layer == (
        Layer.SUPPRESSION
    )
    assert _decide(suppressions=[suppression], now=expiry).outcome is Outcome.SEND


def test_account_reasons() -> None:
    assert _decide(recipient=None).reason == "the recipient does not exist"
    deleted = RecipientView("u9", ADDRESS, "deleted", "UTC")
    assert _decide(recipient=deleted).reason == "recipient 'u9' is deleted"
    no_address = RecipientView("u9", None, "active", "UTC")
    assert _decide(recipient=no_address).reason == "recipient 'u9' has no email address"


def test_a_default_off_topic_is_not_enabled_by_a_workspace_yes() -> None:
    decision = _decide(
        topic=TopicView("workspace-digest", default_enabled=False),
        preferences=PreferenceSet(email_enabled=True, workspaces={"w1": True}, tasks={"t1": True}),
    )
    assert decision.layer is Layer.TOPIC
    assert "off by default" in decision.reason


def test_no_workspace_or_task_passes_those_layers() -> None:
    decision = _decide(
        workspace_id=None,
        task_id=None,
        preferences=PreferenceSet(workspaces={"w1": False}, tasks={"t1": False}),
    )
    assert decision == Decision(Outcome.SEND, None, "every layer allows sending", NOW_AWAKE)


# --- the structured view explain reuses ------------------------------------------------


def test_check_layers_reports_every_layer_in_precedence_order() -> None:
    checks = check_layers(
        recipient=_recipient("active"),
        topic=TopicView("task-reminder"),
        workspace_id="w1",
        task_id="t1",
        preferences=PreferenceSet(topics={"task-reminder": False}, tasks={"t1": False}),
        suppressions=[],
        now=NOW_QUIET,
    )
    assert [c.layer for c in checks] == [layer for layer, _ in PRECEDENCE]
    assert [c.verdict for c in checks] == [
        Verdict.ALLOW,
        Verdict.ALLOW,
        Verdict.ALLOW,
        Verdict.BLOCK,
        Verdict.ALLOW,
        Verdict.BLOCK,
        Verdict.DEFER,
    ]
    assert checks[-1].send_at == QUIET_END
    assert deciding_check(checks) == checks[3]


def test_an_essential_topic_bypasses_preferences_but_keeps_quiet_hours() -> None:
    checks = check_layers(
        recipient=_recipient("active"),
        topic=TopicView("security", essential=True),
        workspace_id="w1",
        task_id="t1",
        preferences=PreferenceSet(email_enabled=False, topics={"security": False}),
        suppressions=[SuppressionView("unsubscribe_all")],
        now=NOW_QUIET,
    )
    assert [c.verdict for c in checks[2:6]] == [Verdict.BYPASS] * 4
    deciding = deciding_check(checks)
    assert isinstance(deciding, LayerCheck)
    assert (deciding.layer, deciding.send_at) == (Layer.QUIET_HOURS, QUIET_END)


def test_decisions_are_in_utc_whatever_zone_now_is_given_in() -> None:
    from zoneinfo import ZoneInfo

    local_now = NOW_AWAKE.astimezone(ZoneInfo("Asia/Kolkata"))
    decision = _decide(now=local_now)
    assert decision.send_at == NOW_AWAKE
    assert decision.send_at is not None
    assert decision.send_at.tzinfo is UTC


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        _decide(now=datetime(2026, 1, 15, 12, 0))


def test_an_unknown_time_zone_is_refused_loudly() -> None:
    recipient = RecipientView("u1", ADDRESS, "active", "Mars/Olympus", QuietHours(time(1), time(2)))
    with pytest.raises(ValueError, match="Mars/Olympus"):
        _decide(recipient=recipient)


def test_preferences_are_frozen_copies() -> None:
    topics = {"task-reminder": True}
    preferences = PreferenceSet(topics=topics)
    topics["task-reminder"] = False
    assert preferences.topics["task-reminder"] is True
    with pytest.raises(TypeError):
        preferences.topics["x"] = True  # type: ignore[index]


def test_layer_and_outcome_strings_are_the_public_names() -> None:
    assert [str(layer) for layer in Layer] == [
        "account",
        "suppression",
        "global",
        "topic",
        "workspace",
        "task",
        "quiet_hours",
        "ramp",
        "lateness",
    ]
    assert [str(outcome) for outcome in Outcome] == ["send", "blocked", "deferred", "expired"]
