"""The ``reminders`` command (Typer). Errors: one line on stderr; exit 2 for bad input,
1 for a failure of the engine or its peers (DESIGN §13)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from scheduler.cli_explain import explain_command
from scheduler.cli_ramp import ramp_cli
from scheduler.errors import ConfigurationError, Conflict, InvalidInput, NotFound, ReminderError
from scheduler.inputs import parse_instant

F = TypeVar("F", bound=Callable[..., Any])

cli = typer.Typer(
    name="reminders",
    help="Time Plan reminder engine.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
db_cli = typer.Typer(help="Database schema.", no_args_is_help=True)
keys_cli = typer.Typer(help="API keys.", no_args_is_help=True)
rules_cli = typer.Typer(help="Reminder rules.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")
cli.add_typer(keys_cli, name="keys")
cli.add_typer(rules_cli, name="rules")
cli.add_typer(ramp_cli, name="ramp")


class Exit(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 2) -> Exit:
    return Exit(message, code)


def translated(func: F) -> F:
    """Map the engine's errors onto one stderr line and the documented exit codes."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (InvalidInput, NotFound, Conflict, ConfigurationError) as exc:
            raise fail(f"error: {exc}", 2) from None
        except OperationalError as exc:
            raise fail(f"error: database unreachable: {exc.orig}", 1) from None
        except (ReminderError, SQLAlchemyError) as exc:
            raise fail(f"error: {exc}", 1) from None

    return wrapper  # type: ignore[return-value]


def load_app(**overrides: Any) -> Any:
    from scheduler.app import build_app
    from scheduler.config import load_settings

    return build_app(load_settings(**overrides))


def instant(value: str | None, field: str) -> datetime | None:
    return parse_instant(value, field=field) if value else None


@db_cli.command("upgrade")
@translated
def db_upgrade() -> None:
    """Bring the database to the latest revision."""
    from scheduler import migrations

    app = load_app()
    migrations.upgrade(app.engine)
    typer.echo(f"database at revision {migrations.current_revision(app.engine)}")


@cli.command()
@translated
def tick(
    now: Annotated[str, typer.Option(help="The instant to run as (ISO 8601 with offset).")],
) -> None:
    """Run every stage once as of NOW (a deterministic pass)."""
    at = parse_instant(now, field="--now")
    app = load_app()
    typer.echo(json.dumps(app.tick(at), sort_keys=True))


@keys_cli.command("create")
@translated
def keys_create(
    scope: Annotated[list[str], typer.Option(help="rules or ops (repeatable).")],
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
) -> None:
    """Create an API key; prints it alone on stdout, once (only its hash is stored)."""
    app = load_app()
    typer.echo(app.keys.create(set(scope), now=app.now(), name=name))


@rules_cli.command("preview")
@translated
def rules_preview(
    schedule: Annotated[str, typer.Option(help="The schedule as JSON.")],
    after: Annotated[str | None, typer.Option(help="Instants strictly after this.")] = None,
    count: Annotated[int, typer.Option(min=1, max=1000)] = 10,
    timezone: Annotated[str | None, typer.Option(help="Zone when the schedule has none.")] = None,
    due: Annotated[str | None, typer.Option(help="Task due instant (relative rules).")] = None,
) -> None:
    """Print the next COUNT fire times of SCHEDULE as JSON [{"utc", "local"}]."""
    from scheduler.clock import SystemClock
    from scheduler.config import load_settings
    from scheduler.rules.recurrence import preview
    from scheduler.rules.schedules import parse_schedule, validate_schedule
    from scheduler.rules.timezones import resolve_zone

    try:
        data = json.loads(schedule)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not JSON: {exc.msg}", field="--schedule") from None
    if not isinstance(data, dict):
        raise InvalidInput("must be a JSON object", field="--schedule")
    parsed = parse_schedule(data)
    zone = resolve_zone(getattr(parsed, "timezone", None) or timezone or "UTC", field="--timezone")
    start = instant(after, "--after") or SystemClock().now()
    # The store's checks, so a preview never shows what POST /v1/rules would refuse (and
    # a rule that can never fire is refused fast instead of walking dateutil to 9999).
    interval = timedelta(seconds=load_settings().min_rule_interval_seconds)
    validate_schedule(parsed, zone=zone, now=start, min_interval=interval)
    instants = preview(parsed, zone=zone, after=start, count=count, due_at=instant(due, "--due"))
    typer.echo(
        json.dumps(
            [
                {
                    "utc": i.isoformat().replace("+00:00", "Z"),
                    "local": i.astimezone(zone).isoformat(),
                }
                for i in instants
            ],
            indent=2,
        )
    )


def _serve(host: str, port: int, *, with_worker: bool, demo: bool) -> None:
    import uvicorn

    from scheduler import migrations
    from scheduler.demo import seed_if_empty
    from scheduler.web.app import create_web_app
    from scheduler.worker import Worker, install_stop_signals

    app = load_app()
    worker = Worker(app) if with_worker else None
    if worker is not None:
        worker.claim_database()  # a second worker on one SQLite file refuses here
    if app.settings.dialect == "sqlite":
        migrations.upgrade(app.engine)  # the embedded default sets itself up
    if demo and seed_if_empty(app, now=app.now()):
        typer.echo("seeded the demo: a reminder is due within a minute")
    if app.settings.sender == "outbox":
        typer.echo(f"mail lands in {app.settings.outbox_dir.resolve()}/ as .eml files")
    server = uvicorn.Server(
        uvicorn.Config(create_web_app(app), host=host, port=port, log_level="warning")
    )
    if worker is not None:
        # A signal before uvicorn installs its own handlers (it starts slowly) stops the
        # server too; after, uvicorn restores these on its graceful shutdown and re-raises
        # the signal to them: the worker then stops (leases released) and we exit 0.
        install_stop_signals(worker, also=lambda: setattr(server, "should_exit", True))
        worker.start()
    typer.echo(f"serving on http://{host}:{port} (Ctrl-C stops)")
    try:
        server.run()
    finally:
        if worker is not None:
            worker.stop()
        app.close()


@cli.command()
@translated
def run(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    demo: Annotated[bool, typer.Option(help="Seed a demo into an empty database.")] = False,
) -> None:
    """Worker and web in one process: the embedded default."""
    _serve(host, port, with_worker=True, demo=demo)


@cli.command()
@translated
def serve(
    host: Annotated[str, typer.Option()] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
) -> None:
    """The web process alone (HTTP API, unsubscribe pages, SES events, ops)."""
    _serve(host, port, with_worker=False, demo=False)


@cli.command()
@translated
def worker() -> None:
    """The worker process alone: runs the stages until SIGTERM/SIGINT."""
    from scheduler.worker import Worker, install_stop_signals

    app = load_app()
    runner = Worker(app)
    install_stop_signals(runner)
    runner.start()
    runner.stopped.wait()
    runner.stop()
    app.close()


@cli.command()
@translated
def demo() -> None:
    """Seed the demo into an empty database."""
    from scheduler import migrations
    from scheduler.demo import seed_if_empty

    app = load_app()
    migrations.upgrade(app.engine)
    seeded = seed_if_empty(app, now=app.now())
    typer.echo("seeded" if seeded else "database not empty: nothing seeded")


cli.command("explain")(translated(explain_command))


# Sub-commands in their own modules; imported here, after `translated` exists.
from scheduler.cli_events import events_cli  # noqa: E402
from scheduler.cli_ses import ses_cli  # noqa: E402

cli.add_typer(events_cli, name="events")
cli.add_typer(ses_cli, name="ses")


def main() -> None:
    # Our own progress at INFO; libraries (alembic, botocore, apscheduler) only when it matters.
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("scheduler").setLevel(logging.INFO)
    try:
        cli()
    except Exit as exc:
        typer.echo(str(exc), err=True)
        sys.exit(exc.code)
