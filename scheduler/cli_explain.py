"""``reminders explain``: why a recipient will (not) get their reminders (DESIGN §11, §13).

Registered in ``cli.py`` with ``cli.command("explain")(translated(explain_command))``;
this module does not import ``scheduler.cli`` at import time, so neither can loop.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Annotated

import typer

from scheduler.clock import utc
from scheduler.inputs import parse_instant
from scheduler.preferences.explain import MAX_ITEMS, ExplainItem

DEFAULT_SPAN = timedelta(days=7)
COLUMNS = ("fire_at", "rule_id", "decision", "layer", "send_at", "reason")


def explain_command(
    recipient: Annotated[str, typer.Option(help="The recipient's id.")],
    from_: Annotated[
        str | None, typer.Option("--from", help="Start of the range (ISO 8601; default now).")
    ] = None,
    to: Annotated[
        str | None, typer.Option("--to", help="End of the range (ISO 8601; default from + 7 days).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Every reminder that would fire for RECIPIENT in the range: decision, layer, reason."""
    from scheduler.cli import load_app
    from scheduler.preferences.explain import explain

    start = parse_instant(from_, field="--from") if from_ else None
    end = parse_instant(to, field="--to") if to else None
    app = load_app()
    try:
        now = app.now()
        start = start or now
        items = explain(
            app.sessions, recipient, start=start, end=end or start + DEFAULT_SPAN, now=now
        )
    finally:
        app.close()
    if as_json:
        typer.echo(json.dumps({"items": [i.as_dict() for i in items]}, indent=2))
    else:
        typer.echo(render_table(items))
    if len(items) >= MAX_ITEMS:
        typer.echo(f"(showing the first {MAX_ITEMS}; narrow the range for more)", err=True)


def render_table(items: Sequence[ExplainItem]) -> str:
    """A fixed-width table, one occurrence per line; the reason column is last and unpadded."""
    if not items:
        return "no reminders fire in this range"
    rows = [COLUMNS] + [
        (
            _short(i.fire_at),
            i.rule_id,
            i.decision,
            i.layer or "-",
            _short(i.send_at) if i.send_at else "-",
            i.reason,
        )
        for i in items
    ]
    widths = [max(len(row[c]) for row in rows) for c in range(len(COLUMNS) - 1)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True))
        + "  "
        + row[-1]
        for row in rows
    ]
    return "\n".join(line.rstrip() for line in lines)


def _short(instant: datetime) -> str:
    return utc(instant).strftime("%Y-%m-%dT%H:%MZ")
