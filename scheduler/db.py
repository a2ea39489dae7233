"""Engine and session factory, the naming convention, and the few dialect differences.

Nothing connects at import time: ``make_engine`` is called by the composition root.
SQLite is the embedded default (one worker, WAL); PostgreSQL is production (row locks
with ``FOR UPDATE SKIP LOCKED``, any number of workers).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# Stable constraint names so Alembic autogenerate and both dialects agree.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Keeps claim queries fast: an idle transaction pins the xmin horizon and bloats the
# hot tables (brandur.org/postgres-queues); these bound how long one can linger.
# JIT off: every statement the engine runs is short, and a generic plan whose estimated
# cost crosses jit_above_cost turned a 0.4 ms idle tick into 16 ms (bench/README.md, Fire).
POSTGRES_SESSION_OPTIONS = (
    "-c idle_in_transaction_session_timeout=30000 -c lock_timeout=10000"
    " -c statement_timeout=60000 -c jit=off"
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both dialects (SQLite keeps no offset; we re-attach UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime bound to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def make_engine(url: str, *, schema: str | None = None, **kwargs: Any) -> Engine:
    """An engine for ``url``; ``schema`` (PostgreSQL) sets the search path (used by tests)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, **kwargs)
    options = POSTGRES_SESSION_OPTIONS
    if schema:
        options += f" -c search_path={schema}"
    return create_engine(
        url,
        # Error messages must not carry bound values: they hold email addresses.
        hide_parameters=True,
        pool_pre_ping=True,
        pool_size=kwargs.pop("pool_size", 5),
        connect_args={"options": options, "connect_timeout": 10},
        **kwargs,
    )


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        hide_parameters=True,
        connect_args={"check_same_thread": False, "timeout": 30},
        **kwargs,
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # SQLite's defaults lose foreign keys and block readers; the embedded default
        # wants WAL (readers never block the one writer) and enforced references.
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
        # pysqlite's own transaction handling defers BEGIN; take it over so BEGIN
        # IMMEDIATE below gives each write transaction the lock up front.
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One short transaction: commit on success, roll back on any error."""
    with factory() as session, session.begin():
        yield session


def is_postgres(engine_or_session: Engine | Session) -> bool:
    bind = (
        engine_or_session.get_bind()
        if isinstance(engine_or_session, Session)
        else engine_or_session
    )
    return bind.dialect.name == "postgresql"


def new_metadata() -> MetaData:
    return MetaData(naming_convention=NAMING_CONVENTION)
