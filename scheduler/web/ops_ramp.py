"""``/ops/ramp``: the ramp-up state and its operator controls over HTTP (DESIGN §9).

The same actions as ``reminders ramp``, for an ``ops`` key. Every change is audited
under the key (``key:<id>``); bodies refuse unknown fields, and every error is RFC 9457
problem+json (``scheduler.web.problems``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from scheduler.app import App
from scheduler.delivery.ramp import RampStore
from scheduler.inputs import Strict
from scheduler.keys import Principal
from scheduler.web.auth import require_scope
from scheduler.web.problems import PROBLEM_RESPONSES

# One dependency object for the router and the routes that name the operator, so FastAPI
# runs it (and looks the key up) once per request.
_ops = require_scope("ops")
router = APIRouter(
    prefix="/ops/ramp", tags=["ops"], responses=PROBLEM_RESPONSES, dependencies=[Depends(_ops)]
)
Operator = Annotated[Principal, Depends(_ops)]

# Validation beyond the shape (a limit above the SES quota, a blank reason) is the
# store's, so the CLI and HTTP refuse exactly the same things.
ReasonText = Annotated[str, Field(min_length=1, max_length=500, examples=["warm-up week 2"])]


class SetIn(Strict):
    daily_limit: Annotated[int, Field(examples=[5000])]
    rate_per_second: Annotated[float | None, Field(examples=[2.5])] = None
    reason: ReasonText


class ReasonIn(Strict):
    reason: ReasonText


def _app(request: Request) -> App:
    app: App = request.app.state.app
    return app


@router.get("", summary="Where the ramp stands, the last days and the audit log")
def show(
    request: Request,
    history: Annotated[int, Query(ge=0, le=1000, description="How many audit entries.")] = 50,
) -> dict[str, Any]:
    app = _app(request)
    store: RampStore = app.ramp
    view = store.show(app.now()).as_dict()
    view["history"] = [change.__dict__ for change in store.history(history)] if history else []
    return view


@router.put("", summary="Manual mode at a daily limit (and rate)")
def set_manual(body: SetIn, request: Request, who: Operator) -> dict[str, Any]:
    app = _app(request)
    state = app.ramp.set_manual(
        body.daily_limit, body.rate_per_second, body.reason, who.actor, app.now()
    )
    return state.as_dict()


@router.post("/pause", summary="Stop sending until resumed")
def pause(body: ReasonIn, request: Request, who: Operator) -> dict[str, Any]:
    app = _app(request)
    return app.ramp.pause(body.reason, who.actor, app.now()).as_dict()


@router.post("/resume", summary="Resume in the mode the stream had before the pause")
def resume(body: ReasonIn, request: Request, who: Operator) -> dict[str, Any]:
    app = _app(request)
    return app.ramp.resume(who.actor, app.now(), body.reason).as_dict()


@router.post("/auto", summary="Hand the stream to the policy")
def auto(body: ReasonIn, request: Request, who: Operator) -> dict[str, Any]:
    app = _app(request)
    return app.ramp.auto(who.actor, app.now(), body.reason).as_dict()
