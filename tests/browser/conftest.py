"""Browser tests: Debian's Chromium driven by Python Playwright against a live server.

- ``browser``: one headless Chromium for the session, launched from ``/usr/bin/chromium``
  (``.ci/run`` installs the Debian package). Playwright never downloads a browser here; a
  missing Chromium FAILS the run with the fix in the message, it does not skip.
- ``live``: uvicorn in a thread (``tests/e2e/live_server.serve``: port 0, socket bound
  first, so no readiness polling and no sleeps) serving ``create_web_app(app)`` for an app
  built by the shared ``make_app`` fixture, so every test runs on SQLite and PostgreSQL.
- ``shoot(page, name)``: screenshots at phone (360×740) and desktop (1280×800) sizes under
  ``test-artifacts/screenshots/`` (gitignored), once per page (on the SQLite run).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Database
from tests.e2e.live_server import serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is missing at {CHROMIUM}: the browser tests drive Debian's Chromium. "
            "Install it with `apt-get install chromium` (.ci/run does this); never "
            "`playwright install`.",
            pytrace=False,
        )
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP, locale="en-US", timezone_id="UTC")
    context.set_default_timeout(5_000)
    tab = context.new_page()
    errors: list[str] = []
    # A CSP violation or a resource that fails to load shows up on the console; the pages
    # must have none. (A 4xx page itself is logged too; tests ask for those on purpose.)
    tab.on("console", lambda m: errors.append(m.text) if _unexpected(m) else None)
    tab.on("response", lambda r: errors.append(_failed(r)) if _failed(r) else None)
    yield tab
    context.close()
    assert not errors, f"browser console errors: {errors}"


def _unexpected(message: Any) -> bool:
    text: str = message.text
    return message.type == "error" and not text.startswith(
        "Failed to load resource: the server responded with a status of 4"
    )


def _failed(response: Any) -> str:
    """A stylesheet or other subresource that did not load (documents may be 4xx)."""
    if response.status < 400 or response.request.resource_type == "document":
        return ""
    return f"{response.status} for {response.url}"


@dataclass
class Live:
    """What a browser test needs: the app (database, clock, stores) and its URL."""

    app: Any
    url: str
    db: Database


@pytest.fixture
def live(make_app: Any, db: Database) -> Iterator[Callable[..., Live]]:
    """``live(now, **make_app_options)`` → the app served over HTTP for this test."""
    from scheduler.web.app import create_web_app

    with ExitStack() as servers:

        def start(now: datetime, **options: Any) -> Live:
            app = make_app(now, **options)
            return Live(app=app, url=servers.enter_context(serve(create_web_app(app))), db=db)

        yield start


@pytest.fixture
def shoot(db: Database) -> Callable[[Any, str], None]:
    """Save ``name``-phone.png and ``name``-desktop.png of the page (full length)."""

    def take(page: Any, name: str) -> None:
        if db.dialect != "sqlite":
            return  # the same pages on PostgreSQL: one set of pictures is enough
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        before = page.viewport_size
        for size_name, size in (("phone", PHONE), ("desktop", DESKTOP)):
            page.set_viewport_size(size)
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{size_name}.png"), full_page=True)
        page.set_viewport_size(before)

    return take
