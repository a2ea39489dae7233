"""``reminders events poll``: read SES events from the SQS queue (DESIGN §10, §13)."""

from __future__ import annotations

import json
import signal
import threading
from typing import Annotated

import typer

from scheduler.cli import load_app, translated
from scheduler.errors import ConfigurationError

events_cli = typer.Typer(help="SES events.", no_args_is_help=True)


@events_cli.command("poll")
@translated
def poll(
    once: Annotated[
        bool, typer.Option("--once", help="Read until the queue is empty, then exit.")
    ] = False,
    wait_seconds: Annotated[
        int, typer.Option(min=0, max=20, help="SQS long-poll wait per receive.")
    ] = 20,
) -> None:
    """Read SES events from REMINDERS_SES_EVENTS_QUEUE_URL and apply them."""
    from scheduler.delivery.ses import make_aws_client
    from scheduler.delivery.sqs_poller import SqsPoller

    app = load_app()
    settings = app.settings
    if not settings.ses_events_queue_url:
        raise ConfigurationError("REMINDERS_SES_EVENTS_QUEUE_URL is not set")
    client = make_aws_client("sqs", settings.ses_region, settings.aws_endpoint_url)
    poller = SqsPoller(
        client,
        settings.ses_events_queue_url,
        app.ses_events,
        now=app.now,
        wait_seconds=wait_seconds,
    )
    try:
        if once:
            typer.echo(json.dumps(poller.drain().as_dict(), sort_keys=True))
            return
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda _s, _f: stop.set())
        signal.signal(signal.SIGINT, lambda _s, _f: stop.set())
        typer.echo("polling SES events (Ctrl-C stops after the current receive)", err=True)
        poller.run(stop)
    finally:
        app.close()
