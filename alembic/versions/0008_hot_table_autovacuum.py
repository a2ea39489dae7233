"""Aggressive autovacuum on the hot tables (PostgreSQL only; a no-op on SQLite).

``occurrence``, ``message`` and ``reminder_rule`` are updated on every pass of the
pipeline, so dead row versions pile up far faster than the default thresholds (20 % of
the table) notice; the claim queries then walk them and slow down (brandur.org/
postgres-queues; /work/shared/reference/scheduling-engines.md §5 measured a 5-6x drop).
Vacuuming after 1 % of the rows changed, analysing after 2 %, with a short cost delay,
keeps the tables and their partial indexes lean:
https://www.postgresql.org/docs/current/sql-createtable.html#SQL-CREATETABLE-STORAGE-PARAMETERS

Storage parameters are not part of the SQLModel metadata and Alembic does not compare
them, so ``alembic check`` stays empty.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

HOT_TABLES = ("occurrence", "message", "reminder_rule")
SETTINGS = {
    "autovacuum_vacuum_scale_factor": "0.01",
    "autovacuum_analyze_scale_factor": "0.02",
    "autovacuum_vacuum_cost_delay": "2",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    values = ", ".join(f"{name} = {value}" for name, value in SETTINGS.items())
    for table in HOT_TABLES:
        op.execute(f"ALTER TABLE {table} SET ({values})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    names = ", ".join(SETTINGS)
    for table in HOT_TABLES:
        op.execute(f"ALTER TABLE {table} RESET ({names})")
