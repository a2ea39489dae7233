"""The FastAPI application: built from an ``App`` (the composition root), never at import."""

from __future__ import annotations

from fastapi import FastAPI

from scheduler.app import App
from scheduler.web import api, problems
from scheduler.web.ses_events import ses_events_router


def create_web_app(app: App) -> FastAPI:
    web = FastAPI(
        title="Time Plan reminder engine",
        version="0.1.0",
        description="Reminder rules, preferences and delivery for Time Plan.",
    )
    web.state.app = app
    problems.install(web)
    api.install(web, app)
    web.include_router(ses_events_router(app))

    @web.get("/healthz", tags=["ops"], summary="The process is up")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    from scheduler.web.ops_ramp import router as ops_ramp

    web.include_router(ops_ramp)
    from scheduler.web.unsubscribe import router as recipient_pages

    web.include_router(recipient_pages)
    from scheduler.web.ops_pages import router as ops_pages

    web.include_router(ops_pages)
    return web
