"""``reminders ses setup`` and ``reminders ses check`` (DESIGN §10, §11)."""

from __future__ import annotations

from typing import Annotated

import typer

from scheduler.cli import Exit, translated

ses_cli = typer.Typer(help="Amazon SES setup and preflight.", no_args_is_help=True)


@ses_cli.command("setup")
@translated
def ses_setup(
    topic_arn: Annotated[
        str | None, typer.Option(help="Publish events to this SNS topic instead of our own.")
    ] = None,
) -> None:
    """Create or converge the configuration set, event destination, suppression and alarms."""
    from scheduler.config import load_settings
    from scheduler.delivery.ses_setup import SesClients, setup

    settings = load_settings()
    clients = SesClients.create(settings.ses_region, settings.aws_endpoint_url)
    report = setup(
        clients, configuration_set=settings.ses_configuration_set, event_topic_arn=topic_arn
    )
    for step in report.steps:
        typer.echo(f"{step.action:<9}  {step.name}")
    typer.echo(f"\nSES events topic: {report.event_topic_arn}")
    typer.echo(
        "Subscribe /ses/events (HTTPS) or an SQS queue to it, and list it in "
        "REMINDERS_SNS_TOPIC_ARNS."
    )
    typer.echo(f"Alarm topic:      {report.alarm_topic_arn}")


@ses_cli.command("check")
@translated
def ses_check(
    domain: Annotated[
        str | None, typer.Option(help="Sending domain (default REMINDERS_MAIL_DOMAIN).")
    ] = None,
) -> None:
    """The SES production checklist; exit 1 when a required control fails."""
    from scheduler.config import load_settings
    from scheduler.delivery.ses_preflight import check
    from scheduler.delivery.ses_setup import SesClients

    settings = load_settings()
    clients = SesClients.create(settings.ses_region, settings.aws_endpoint_url)
    report = check(
        clients,
        domain=domain or settings.mail_domain,
        region=settings.ses_region,
        configuration_set=settings.ses_configuration_set,
    )
    typer.echo(report.table())
    if not report.ok:
        raise Exit("error: a required SES control fails (see the table above)", 1)
