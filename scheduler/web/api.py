"""The product backend's HTTP API (``/v1``), its probes and metrics, wired into a web app.

Every ``/v1`` route needs a bearer key with the ``rules`` scope and documents every error
it can answer (RFC 9457 problem+json). Request bodies refuse unknown fields and instants
without an offset, and are capped at ``settings.max_body_bytes``. Each route calls one
service method, and each service method is one transaction, so an error leaves nothing
half-written.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from sqlalchemy.exc import OperationalError

from scheduler import migrations
from scheduler.app import App
from scheduler.web import api_directory, api_preferences, api_rules, probes
from scheduler.web.auth import require_scope
from scheduler.web.body_limit import BodySizeLimit
from scheduler.web.metrics import make_metrics
from scheduler.web.problems import PROBLEM_RESPONSES, problem

log = logging.getLogger(__name__)
UNAVAILABLE = {**PROBLEM_RESPONSES[422], "description": "The database is unavailable; retry"}

v1 = APIRouter(
    prefix="/v1",
    dependencies=[Depends(require_scope("rules"))],
    responses={**PROBLEM_RESPONSES, 503: UNAVAILABLE},
)
v1.include_router(api_directory.router)
v1.include_router(api_rules.router)
v1.include_router(api_preferences.router)


def install(web: FastAPI, app: App) -> None:
    """Add the ``/v1`` API, ``/readyz``, ``/metrics`` and the body-size limit to ``web``."""
    web.add_exception_handler(OperationalError, _database_unavailable)
    web.state.head_revision = migrations.head_revision()
    web.state.metrics = make_metrics(app.sessions, app.now)
    web.add_middleware(BodySizeLimit, max_bytes=app.settings.max_body_bytes)
    web.include_router(v1)
    web.include_router(probes.router)


async def _database_unavailable(_request: Request, exc: Exception) -> Response:
    # The database is down or unreachable: a retryable 503 (RFC 9110 §15.6.4), not a 500.
    # Only the driver's own message is logged (never the statement's parameters, which
    # can hold an address), and nothing of it reaches the client.
    log.warning("database unavailable: %s", getattr(exc, "orig", None) or type(exc).__name__)
    return problem(
        503, "Service unavailable", "the database is unavailable", headers={"Retry-After": "5"}
    )
