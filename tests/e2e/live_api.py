"""A live HTTP server for e2e tests: uvicorn on 127.0.0.1, port 0, in a thread.

The engine is built on the ``db`` fixture with a ``FixedClock``, so a test moves time by
setting the clock and driving ``app.pipeline.tick(now)`` in-process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from scheduler.app import App, build_app
from scheduler.clock import FixedClock
from scheduler.config import Settings
from scheduler.web.app import create_web_app
from tests.conftest import Database

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


@dataclass
class LiveApi:
    app: App
    clock: FixedClock
    base_url: str
    rules_key: str
    ops_key: str

    def client(self, key: str | None = "rules", **kwargs: Any) -> httpx.Client:
        token = {"rules": self.rules_key, "ops": self.ops_key}.get(key or "", key)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10, **kwargs)


def settings_for(db: Database, tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        database_url=db.url,
        database_schema=db.schema,
        outbox_dir=tmp_path / "outbox",
        signing_keys="test-signing-key-0123456789abcdef",
        **overrides,
    )


@contextmanager
def serve(app: App) -> Iterator[str]:
    """Serve ``app`` over HTTP until the block ends; yields the base URL."""
    config = uvicorn.Config(
        create_web_app(app), host="127.0.0.1", port=0, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            threading.Event().wait(0.01)  # polling a flag set by uvicorn, not a clock
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def live_api(db: Database, tmp_path: Path, **overrides: Any) -> Iterator[LiveApi]:
    clock = FixedClock(START)
    app = build_app(settings_for(db, tmp_path, **overrides), engine=db.engine, clock=clock)
    rules_key = app.keys.create({"rules"}, now=START, name="backend")
    ops_key = app.keys.create({"ops"}, now=START, name="operator")
    with serve(app) as base_url:
        yield LiveApi(app, clock, base_url, rules_key, ops_key)
