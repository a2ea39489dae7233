"""Shared fixtures: one ``db`` fixture parametrized over SQLite and PostgreSQL.

PostgreSQL is required: if it is unreachable the run fails with a clear message rather
than skipping half the suite. Each run migrates its own schema (dropped at the end);
each test starts from empty tables with the seeded topics.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from scheduler import migrations
from scheduler.db import make_engine

pytest_plugins = ["tests.moto_server"]

POSTGRES_URL = os.environ.get(
    "REMINDERS_TEST_POSTGRES_URL", "postgresql+psycopg://root@127.0.0.1:5432/test"
)
KEEP_TABLES = {"alembic_version"}
_seed_topics: list[dict[str, object]] = []


@dataclass
class Database:
    """What a test needs to reach the database, in-process or from a subprocess."""

    dialect: str
    url: str
    schema: str | None
    engine: Engine

    def env(self) -> dict[str, str]:
        env = {"REMINDERS_DATABASE_URL": self.url}
        if self.schema:
            env["REMINDERS_DATABASE_SCHEMA"] = self.schema
        return env


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    except OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is unreachable at {POSTGRES_URL} ({exc.orig}). Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` "
            "or set REMINDERS_TEST_POSTGRES_URL.",
            pytrace=False,
        )
    engine = make_engine(POSTGRES_URL, schema=schema)
    migrations.upgrade(engine)
    with engine.connect() as conn:
        _seed_topics[:] = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM topic"))]
    engine.dispose()
    yield schema
    with admin.begin() as conn:
        conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrations.upgrade(engine)
    engine.dispose()
    return path


def _reset_postgres(engine: Engine) -> None:
    with engine.begin() as conn:
        names = conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        ).scalars()
        tables = [n for n in names if n not in KEEP_TABLES]
        conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        # Topics are seeded by a migration; tests may change them, so put them back.
        columns = ", ".join(_seed_topics[0])
        values = ", ".join(f":{c}" for c in _seed_topics[0])
        conn.execute(text(f"INSERT INTO topic ({columns}) VALUES ({values})"), _seed_topics)


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "reminders.db"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
        database = Database("sqlite", url, None, make_engine(url))
    else:
        schema = request.getfixturevalue("postgres_schema")
        engine = make_engine(POSTGRES_URL, schema=schema)
        _reset_postgres(engine)
        database = Database("postgresql", POSTGRES_URL, schema, engine)
    yield database
    database.engine.dispose()


@pytest.fixture
def pg(postgres_schema: str) -> Iterator[Database]:
    """PostgreSQL only: for tests of row locks and many worker processes."""
    engine = make_engine(POSTGRES_URL, schema=postgres_schema)
    _reset_postgres(engine)
    yield Database("postgresql", POSTGRES_URL, postgres_schema, engine)
    engine.dispose()


TEST_SIGNING_KEY = "test-signing-key-0123456789abcdef"


@pytest.fixture
def make_app(db: Database, tmp_path: Path) -> Any:
    """Build the real composition root on the ``db`` fixture with a fixed clock.

    ``make_app(now, sender=None, open_ramp=True, **settings)`` → ``App``; the outbox lands
    in ``tmp_path / "outbox"`` unless a sender is given. ``open_ramp`` sets the ramp to a
    manual limit no test reaches; ramp tests pass ``open_ramp=False``.
    """
    from scheduler.app import build_app
    from scheduler.clock import FixedClock
    from scheduler.config import Settings

    built: list[Any] = []

    def factory(
        now: datetime, sender: Any = None, *, open_ramp: bool = True, **overrides: Any
    ) -> Any:
        values: dict[str, Any] = {
            "database_url": db.url,
            "database_schema": db.schema,
            "outbox_dir": tmp_path / "outbox",
            "signing_keys": TEST_SIGNING_KEY,
            "signing_key_file": tmp_path / "signing.key",
        } | overrides
        app = build_app(Settings(**values), engine=db.engine, clock=FixedClock(now), sender=sender)
        if open_ramp:
            # Most tests are about something else than the warm-up limit: open it wide.
            app.ramp.set_manual(10_000_000, 10_000.0, "tests", "test", now)
        built.append(app)
        return app

    return factory
