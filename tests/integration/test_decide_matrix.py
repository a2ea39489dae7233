"""The stored decision equals the pure evaluator's, on both dialects.

A fixed random sample (seeded, so a failure reproduces) of the product of every stored
preference level, every suppression state, topic kinds, quiet hours and account state is
written through the real stores; one DECIDE pass records a decision for each. The answer
expected is ``resolve`` over views built straight from the combination, not from the
database, so a lost row, a wrong join or a misread column shows up as a mismatch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from sqlalchemy import select, update
from sqlmodel import col

from scheduler.app import App
from scheduler.preferences.decide import decide_pending
from scheduler.preferences.decision import (
    Outcome,
    PreferenceSet,
    QuietHours,
    RecipientView,
    SuppressionView,
    TopicView,
)
from scheduler.preferences.resolve import resolve
from scheduler.tables import Occurrence, Recipient, Topic
from tests.conftest import Database
from tests.integration.preferences_support import T0, add_rule, prefs_app, register

FIRE = T0 + timedelta(hours=1)  # 09:00Z
SAMPLE = 40
TOPICS = {
    "task-reminder": TopicView("task-reminder"),
    "m-essential": TopicView("m-essential", essential=True),
    "m-default-off": TopicView("m-default-off", default_enabled=False),
}
QUIET = {"none": None, "covering": ("08:30", "10:00"), "elsewhere": ("20:00", "06:00")}
SOFT = {"none": None, "active": FIRE + timedelta(days=1), "lapsed": FIRE - timedelta(days=1)}
CHOICES = (None, True, False)
SUPPRESSION_SETS = ((), ("complaint",), ("hard_bounce", "manual"), ("unsubscribe_all",))


@dataclass(frozen=True)
class Combo:
    email_enabled: bool | None
    topic: str
    topic_choice: bool | None
    workspace_choice: bool | None
    task_choice: bool | None
    suppressions: tuple[str, ...]
    soft_bounce: str
    quiet: str
    deleted: bool


def _sample() -> list[Combo]:
    """Distinct combinations, weighted so the early layers do not hide the later ones
    (a deleted account or a complaint decides before any preference is read)."""
    rng = random.Random(20260302)
    combos: dict[Combo, None] = {}
    while len(combos) < SAMPLE:
        combo = Combo(
            email_enabled=rng.choice(CHOICES),
            topic=rng.choice(list(TOPICS)),
            topic_choice=rng.choice(CHOICES),
            workspace_choice=rng.choice(CHOICES),
            task_choice=rng.choice(CHOICES),
            suppressions=rng.choices(SUPPRESSION_SETS, weights=(8, 1, 1, 2))[0],
            soft_bounce=rng.choices(list(SOFT), weights=(6, 1, 2))[0],
            quiet=rng.choice(list(QUIET)),
            deleted=rng.random() < 0.08,
        )
        combos[combo] = None
    return list(combos)


def _store(app: App, index: int, combo: Combo) -> None:
    rid, email = f"r{index}", f"user{index}@example.com"
    register(
        app,
        recipient=rid,
        email=email,
        quiet=QUIET[combo.quiet],
        workspace=f"w{index}",
        task=f"t{index}",
    )
    add_rule(app, FIRE, rule_id=f"rule{index}", recipient=rid, task=f"t{index}", topic=combo.topic)
    body: dict[str, object] = {}
    if combo.email_enabled is not None:
        body["email_enabled"] = combo.email_enabled
    if combo.topic_choice is not None:
        body["topics"] = {combo.topic: combo.topic_choice}
    if combo.workspace_choice is not None:
        body["workspaces"] = {f"w{index}": combo.workspace_choice}
    if combo.task_choice is not None:
        body["tasks"] = {f"t{index}": combo.task_choice}
    app.preferences.patch(rid, body, now=T0)
    # Suppressions last: setting email_enabled true is a resubscribe that would clear
    # an unsubscribe_all written before it.
    for reason in combo.suppressions:
        app.preferences.suppress(email.upper(), reason, now=T0, source_event=f"{reason}-{index}")
    if SOFT[combo.soft_bounce] is not None:
        app.preferences.suppress(
            email, "soft_bounce", now=T0 - timedelta(days=2), expires_at=SOFT[combo.soft_bounce]
        )


def _expected(index: int, combo: Combo) -> tuple[str, str | None]:
    quiet = QUIET[combo.quiet]
    recipient = RecipientView(
        id=f"r{index}",
        email=f"user{index}@example.com",
        status="deleted" if combo.deleted else "active",
        timezone="UTC",
        quiet_hours=QuietHours(time.fromisoformat(quiet[0]), time.fromisoformat(quiet[1]))
        if quiet
        else None,
    )
    suppressions = [SuppressionView(reason) for reason in combo.suppressions]
    if SOFT[combo.soft_bounce] is not None:
        suppressions.append(SuppressionView("soft_bounce", expires_at=SOFT[combo.soft_bounce]))
    preferences = PreferenceSet(
        email_enabled=combo.email_enabled,
        topics={} if combo.topic_choice is None else {combo.topic: combo.topic_choice},
        workspaces={} if combo.workspace_choice is None else {f"w{index}": combo.workspace_choice},
        tasks={} if combo.task_choice is None else {f"t{index}": combo.task_choice},
    )
    decision = resolve(
        recipient=recipient,
        topic=TOPICS[combo.topic],
        workspace_id=f"w{index}",
        task_id=f"t{index}",
        preferences=preferences,
        suppressions=suppressions,
        now=FIRE,
    )
    status = {Outcome.SEND: "ready", Outcome.DEFERRED: "deferred"}.get(
        decision.outcome, decision.outcome.value
    )
    return status, decision.layer.value if decision.layer else None


def test_stored_decisions_match_the_pure_evaluator(db: Database, tmp_path: Path) -> None:
    app = prefs_app(db, tmp_path)
    with app.sessions.begin() as session:
        for view in TOPICS.values():
            if session.get(Topic, view.key) is None:
                session.add(
                    Topic(
                        key=view.key,
                        from_addr="a@timeplanpush.com",
                        reply_to="a@timeplanpush.com",
                        essential=view.essential,
                        default_enabled=view.default_enabled,
                    )
                )
    combos = _sample()
    for index, combo in enumerate(combos):
        _store(app, index, combo)
    deleted = [f"r{i}" for i, combo in enumerate(combos) if combo.deleted]
    with app.sessions.begin() as session:
        # The account layer: a recipient row marked deleted after its rule was stored
        # (what the decide stage meets if a deletion races a fire).
        session.execute(
            update(Recipient).where(col(Recipient.id).in_(deleted)).values(status="deleted")
        )
    app.pipeline.fire(FIRE)
    report = decide_pending(app.sessions, now=FIRE)
    assert report.decided == SAMPLE
    with app.sessions() as session:
        stored = {
            occ.recipient_id: (occ.status, occ.layer) for occ in session.scalars(select(Occurrence))
        }
    mismatches = {
        f"r{i}": (combo, stored[f"r{i}"], _expected(i, combo))
        for i, combo in enumerate(combos)
        if stored[f"r{i}"] != _expected(i, combo)
    }
    assert mismatches == {}
    # The sample is only worth something if it reaches most layers.
    assert len({layer for _, layer in stored.values()}) >= 8


def test_sample_is_stable_and_bounded() -> None:
    assert _sample() == _sample()
    assert len(set(_sample())) == SAMPLE
    assert datetime(2026, 3, 2, 9, tzinfo=UTC) == FIRE
