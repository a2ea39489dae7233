"""``/readyz`` and ``/metrics``: no key needed (``/healthz`` lives in ``app.py``).

``/readyz`` is for a load balancer: 200 only when the database answers and its schema is
at the latest migration, so a web process never serves a half-migrated database.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from scheduler import migrations
from scheduler.app import App
from scheduler.web.problems import PROBLEM_JSON, Problem, problem

router = APIRouter(tags=["ops"])


class Ready(BaseModel):
    status: str
    revision: str | None


@router.get(
    "/readyz",
    response_model=Ready,
    summary="The database answers and is at the latest migration",
    responses={
        503: {
            "model": Problem,
            "content": {PROBLEM_JSON: {}},
            "description": "Not ready: database unreachable or not migrated",
        }
    },
)
def readyz(request: Request) -> Ready | JSONResponse:
    app: App = request.app.state.app
    head: str | None = request.app.state.head_revision
    try:
        with app.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        current = migrations.current_revision(app.engine)
    except SQLAlchemyError:
        return problem(
            503, "Service unavailable", "the database is unreachable", headers={"Retry-After": "5"}
        )
    if current != head:
        return problem(
            503,
            "Service unavailable",
            f"the database is at revision {current}, not {head}: run `reminders db upgrade`",
            headers={"Retry-After": "30"},
        )
    return Ready(status="ok", revision=current)


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={
        200: {
            "content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}},
            "description": "Prometheus text exposition format",
        }
    },
)
def metrics(request: Request) -> Response:
    body = generate_latest(request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
