"""Parameters shared by the ``/v1`` routers: the engine, and path ids as the tables hold them."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from scheduler.app import App


def engine_app(request: Request) -> App:
    app: App = request.app.state.app
    return app


EngineApp = Annotated[App, Depends(engine_app)]

# The same alphabet and width as ``scheduler.inputs.Id`` (ids are VARCHAR(64) columns).
IdPath = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
