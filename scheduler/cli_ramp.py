"""``reminders ramp``: see where the warm-up stands and steer it (DESIGN §9).

Every change needs ``--reason`` and is audited as ``cli:<os user>``. Bad input is one
line on stderr and exit 2, like every other command (``scheduler.cli.translated``).
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer

from scheduler.delivery.ramp import RampStore, require_reason
from scheduler.delivery.ramp_policy import RampState, validate_manual_change
from scheduler.delivery.ramp_views import RampChangeView, RampView
from scheduler.errors import InvalidInput

F = TypeVar("F", bound=Callable[..., Any])

ramp_cli = typer.Typer(
    help="Sending ramp-up: limits, pacing and their audit.", no_args_is_help=True
)

# The store names fields as the HTTP API does; on the command line they are options.
_OPTION_FOR = {"daily_limit": "--daily", "rate_per_second": "--rate", "reason": "--reason"}

# Optional to Typer on purpose: a missing reason is then our one-line error (exit 2),
# not Click's usage box.
Reason = Annotated[str | None, typer.Option(help="Why (required: every change is audited).")]


def _command(func: F) -> F:
    """Map errors like every command does, naming the command-line option at fault."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from scheduler.cli import translated  # looked up late: cli.py imports this module

        def run() -> Any:
            try:
                return func(*args, **kwargs)
            except InvalidInput as exc:
                field = _OPTION_FOR.get(exc.field or "", exc.field)
                raise InvalidInput(exc.message, field=field) from None

        return translated(run)()

    return wrapper  # type: ignore[return-value]


def _store() -> tuple[RampStore, Any]:
    from scheduler import migrations
    from scheduler.cli import load_app

    app = load_app()
    if app.settings.dialect == "sqlite" and not migrations.at_head(app.engine):
        migrations.upgrade(app.engine)  # the embedded default sets itself up
    return app.ramp, app


def actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in some containers
        user = f"uid{os.getuid()}"
    return f"cli:{user}"


@ramp_cli.command("show")
@_command
def show(
    history: Annotated[bool, typer.Option("--history", help="List the audited changes.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many changes.")] = 20,
) -> None:
    """Where the ramp stands: mode, limit, use today, the last days' rates, next step."""
    store, app = _store()
    typer.echo(format_view(store.show(app.now())))
    if history:
        typer.echo("")
        typer.echo(format_history(store.history(limit)))


@ramp_cli.command("set")
@_command
def set_limit(
    daily: Annotated[int | None, typer.Option(help="Daily limit (0 or more).")] = None,
    rate: Annotated[float | None, typer.Option(help="Sends per second (default: keep).")] = None,
    reason: Reason = None,
) -> None:
    """Manual mode at DAILY a day (the policy stops moving it; review thresholds still pause)."""
    if daily is None:
        raise InvalidInput("required", field="daily_limit")
    validate_manual_change(daily, rate, reason, None)  # refuse early; the store adds the quota
    store, app = _store()
    _echo_state(store.set_manual(daily, rate, reason or "", actor(), app.now()))


@ramp_cli.command("pause")
@_command
def pause(reason: Reason = None) -> None:
    """Stop sending on the stream until it is resumed."""
    require_reason(reason)
    store, app = _store()
    _echo_state(store.pause(reason or "", actor(), app.now()))


@ramp_cli.command("resume")
@_command
def resume(reason: Reason = None) -> None:
    """Resume a paused stream in the mode it had before the pause."""
    require_reason(reason)
    store, app = _store()
    _echo_state(store.resume(actor(), app.now(), reason or ""))


@ramp_cli.command("auto")
@_command
def auto(reason: Reason = None) -> None:
    """Hand the stream to the policy from its current limit."""
    require_reason(reason)
    store, app = _store()
    _echo_state(store.auto(actor(), app.now(), reason or ""))


def _echo_state(state: RampState) -> None:
    typer.echo(
        f"{state.mode} at {state.daily_limit:,}/day, {state.rate_per_second:g}/s: {state.reason}"
    )


# --- rendering (pure) ------------------------------------------------------------------


def format_view(view: RampView) -> str:
    quota = "unknown"
    if view.quota is not None:
        day, rate = view.quota.daily_ceiling, view.quota.rate_ceiling
        quota = (
            f"{'unlimited' if day is None else f'{day:,}'}/day, "
            f"{'unlimited' if rate is None else f'{rate:g}'}/s"
        )
    share = f" ({view.used_today / view.daily_limit:.0%} of the limit)" if view.daily_limit else ""
    lines = [
        f"stream      {view.stream}",
        f"mode        {view.mode}",
        f"limit       {view.daily_limit:,}/day at {view.rate_per_second:g}/s "
        f"(step {view.step + 1} of {view.steps})",
        f"used today  {view.used_today:,} granted, {view.sent_today:,} sent{share}",
        f"SES quota   {quota}",
        f"reason      {view.reason}",
        f"next        {view.next_step}",
        "",
        f"{'day':<10}  {'granted':>8}  {'sent':>8}  {'delivered':>9}  {'bounced':>7}  "
        f"{'complaints':>10}  {'bounce':>7}  {'complaint':>9}",
    ]
    lines += [
        f"{d.day.isoformat():<10}  {d.granted:>8,}  {d.sent:>8,}  {d.delivered:>9,}  "
        f"{d.bounced:>7,}  {d.complained:>10,}  {d.bounce_rate:>7.2%}  {d.complaint_rate:>9.3%}"
        for d in view.days
    ]
    if not view.days:
        lines.append("(no sends counted in the last 14 days)")
    return "\n".join(lines)


def format_history(changes: list[RampChangeView]) -> str:
    if not changes:
        return "no changes recorded"
    lines = [f"{'when (UTC)':<19}  {'who':<16}  change; why"]
    for change in changes:
        moved = [
            f"{key} {change.old.get(key, '-')} -> {value}"
            for key, value in change.new.items()
            if key != "reason" and change.old.get(key) != value
        ]
        when = change.at.strftime("%Y-%m-%d %H:%M:%S")
        lines.append(f"{when:<19}  {change.actor:<16}  {', '.join(moved) or '-'}; {change.reason}")
    return "\n".join(lines)
