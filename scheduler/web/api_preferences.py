"""``/v1/recipients/{id}/preferences`` and ``/explain`` (DESIGN §6, §13).

Preferences: every level a recipient can switch (global, topics, workspaces, tasks), plus
the blocks on their address that no preference can lift (bounces, complaints, deletion).
Explain answers "what would be sent in this period, and why not" per rule instant.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from scheduler.inputs import Instant
from scheduler.preferences.decision import Layer
from scheduler.preferences.explain import explain
from scheduler.preferences.store import PreferencesPatch
from scheduler.web.api_models import ExplainItem, Explanation
from scheduler.web.api_params import EngineApp, IdPath

router = APIRouter()


class Block(BaseModel):
    reason: str = Field(
        description="hard_bounce, complaint, soft_bounce, unsubscribe_all, "
        "account_deleted or manual"
    )
    layer: Layer
    since: datetime
    until: datetime | None = Field(description="null: until lifted")
    clears_on_resubscribe: bool


class Preferences(BaseModel):
    email_enabled: bool | None = Field(description="the global switch; null: never set")
    topics: dict[str, bool]
    workspaces: dict[str, bool]
    tasks: dict[str, bool]
    blocks: list[Block] = Field(description="suppressions on the recipient's address in force now")


@router.get(
    "/recipients/{recipient_id}/preferences",
    response_model=Preferences,
    tags=["preferences"],
    summary="Read a recipient's preferences",
)
def get_preferences(recipient_id: IdPath, app: EngineApp) -> Preferences:
    return Preferences.model_validate(app.preferences.get(recipient_id, now=app.now()))


@router.patch(
    "/recipients/{recipient_id}/preferences",
    response_model=Preferences,
    tags=["preferences"],
    summary="Change some preferences; null removes an explicit setting",
)
def patch_preferences(recipient_id: IdPath, body: PreferencesPatch, app: EngineApp) -> Preferences:
    return Preferences.model_validate(
        app.preferences.patch(recipient_id, body, now=app.now(), source="api")
    )


@router.get(
    "/recipients/{recipient_id}/explain",
    response_model=Explanation,
    tags=["preferences"],
    summary="What would be sent between from and to, and why not",
    description="Recorded occurrences in [from, to) with their stored decision, and instants "
    "the recipient's active rules will fire at, predicted with today's preferences. "
    "The range spans at most 90 days.",
)
def get_explain(
    recipient_id: IdPath,
    app: EngineApp,
    start: Annotated[Instant, Query(alias="from", description="ISO 8601 with an offset")],
    end: Annotated[Instant, Query(alias="to", description="ISO 8601 with an offset")],
) -> Explanation:
    items = explain(app.sessions, recipient_id, start=start, end=end, now=app.now())
    return Explanation(items=[ExplainItem.model_validate(item) for item in items])
