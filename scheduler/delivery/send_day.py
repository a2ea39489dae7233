"""``send_day`` counters: the ramp's evidence. One upsert per increment, atomic on both
dialects, so counts from many workers and the event handlers add up exactly."""

from __future__ import annotations

from datetime import date

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from scheduler.db import is_postgres
from scheduler.tables import SendDay

COLUMNS = frozenset(
    {"granted", "sent", "delivered", "bounced", "complained", "rejected", "delayed"}
)
send_day_t = SendDay.__table__  # type: ignore[attr-defined]


def increment(session: Session, stream: str, day: date, column: str, amount: int = 1) -> None:
    if column not in COLUMNS:
        raise ValueError(f"unknown send_day column {column!r}")
    dialect = postgresql if is_postgres(session) else sqlite
    values = {c: 0 for c in COLUMNS} | {"stream": stream, "day": day, column: amount}
    statement = dialect.insert(send_day_t).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=["stream", "day"],
        set_={column: send_day_t.c[column] + amount},
    )
    session.execute(statement)


def count_sent(session: Session, stream: str, day: date, amount: int = 1) -> None:
    increment(session, stream, day, "sent", amount)
