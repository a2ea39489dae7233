"""The migrations produce exactly the models' schema on both dialects, and go both ways."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import inspect

from scheduler import migrations
from scheduler.db import make_engine
from tests.conftest import POSTGRES_URL, Database


def test_upgrade_head_matches_models(db: Database) -> None:
    assert migrations.at_head(db.engine)
    assert migrations.schema_drift(db.engine) == []


def test_topics_are_seeded(db: Database) -> None:
    with db.engine.connect() as conn:
        keys = {row[0] for row in conn.exec_driver_sql("SELECT key FROM topic")}
    assert keys == {"task-reminder", "workspace-digest"}


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_downgrade_to_base_and_back(dialect: str, tmp_path: object) -> None:
    schema = None
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path}/roundtrip.db"
    else:
        url, schema = POSTGRES_URL, "t_roundtrip"
        admin = make_engine(url)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
        admin.dispose()
    engine = make_engine(url, schema=schema)
    migrations.upgrade(engine)
    config = migrations.alembic_config()
    from alembic import command

    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrations.upgrade(engine)
    assert migrations.schema_drift(engine) == []
    engine.dispose()
    if schema:
        admin = make_engine(url)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


def test_alembic_check_command_passes_on_sqlite(tmp_path: object) -> None:
    """The stock ``alembic check`` agrees (run the way an operator would)."""
    env = {"REMINDERS_DATABASE_URL": f"sqlite:///{tmp_path}/check.db", "PATH": "/usr/bin:/bin"}
    alembic = [sys.executable, "-m", "alembic"]
    subprocess.run([*alembic, "upgrade", "head"], check=True, env=env, capture_output=True)
    result = subprocess.run([*alembic, "check"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "No new upgrade operations detected" in result.stdout + result.stderr
