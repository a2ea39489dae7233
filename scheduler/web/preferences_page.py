"""``/preferences/{token}``: the preference page reached from a reminder's footer (DESIGN §8).

``GET``/``HEAD`` show every level (``preference_form.load_listing``) and change nothing.
``POST`` saves the form: the signed preference token in the URL names the recipient, the
same-origin check (``pages.same_origin``) refuses posts steered from another site, and only
levels whose state differs from what is stored are written (``plan_changes``), together
with the time zone and quiet hours (``preferences.local_time``) in the same transaction. The
answer is the page again, listing what changed; no redirect, so the list needs no session.
A refused time setting (half a quiet-hours window, say) writes nothing and shows the form
again as it was filled in, with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from scheduler.app import App
from scheduler.errors import InvalidInput, NotFound
from scheduler.preferences.local_time import LocalTime, zone_groups
from scheduler.web.pages import Link, error_page, follow_link, read_form, render_page
from scheduler.web.preference_form import Change, Listing, Toggle, load_listing, plan_changes

SOURCE: str = "preferences-page"
# Two fields per level (shown + on) for a recipient with a great many rules.
MAX_FIELDS = 4000

router = APIRouter(include_in_schema=False)


async def preferences_form(request: Request) -> FormData | None:
    return await read_form(request, max_fields=MAX_FIELDS)


PreferencesForm = Annotated[FormData | None, Depends(preferences_form)]


def _verify(token: str) -> Callable[[App, datetime], str]:
    return lambda app, now: app.signer.verify_preferences(token, now=now)


@router.api_route("/preferences/{token}", methods=["GET", "HEAD"])
def show(token: str, request: Request) -> Response:
    link = follow_link(request, _verify(token))
    if not isinstance(link, Link):
        return link
    listing = _listing(link.app, link.subject)
    if listing is None:
        return _no_account()
    return _page(token, listing, changes=None)


@router.post("/preferences/{token}")
def save(token: str, request: Request, form: PreferencesForm) -> Response:
    link = follow_link(request, _verify(token), form_post=True)
    if not isinstance(link, Link):
        return link
    app, now, recipient_id = link.app, link.now, link.subject
    if form is None or "shown" not in form:
        return error_page(
            400, "Nothing was changed", "The form was incomplete. Reload the page and try again."
        )
    listing = _listing(app, recipient_id)
    if listing is None or listing.deleted:
        return _no_account()
    shown = {value for value in form.getlist("shown") if isinstance(value, str)}
    on = {value for value in form.getlist("on") if isinstance(value, str)}
    patch, changes = plan_changes(listing, shown, on)
    try:
        local_time = _posted_local_time(form)
    except InvalidInput as exc:
        # Nothing is written; the page comes back as the recipient filled it in.
        return _page(token, as_submitted(listing, shown, on), changes=None, error=exc, form=form)
    moved = local_time.changes_from(listing.local_time) if local_time and listing.local_time else []
    if patch or moved:
        new_local_time = local_time if moved else None
        try:
            app.preferences.patch(
                recipient_id, patch, now=now, source=SOURCE, local_time=new_local_time
            )
        except NotFound:
            return _no_account()
        listing = _listing(app, recipient_id) or listing
    return _page(token, listing, changes=changes, moved=moved)


def _posted_local_time(form: FormData) -> LocalTime | None:
    """The time zone and quiet hours fields, if the form had them (else: unchanged)."""
    fields = [form.get(name) for name in ("timezone", "quiet_start", "quiet_end")]
    if not all(isinstance(value, str) for value in fields):
        return None
    zone, start, end = (str(value) for value in fields)
    return LocalTime.from_form(zone, start, end)


def as_submitted(listing: Listing, shown: set[str], on: set[str]) -> Listing:
    """The listing with the boxes as the form had them (to show a refused form again)."""

    def ticked(toggle: Toggle) -> Toggle:
        if toggle.locked or toggle.key not in shown:
            return toggle
        return replace(toggle, enabled=toggle.key in on)

    return replace(
        listing,
        everything=ticked(listing.everything),
        topics=[ticked(t) for t in listing.topics],
        workspaces=[ticked(t) for t in listing.workspaces],
        tasks=[ticked(t) for t in listing.tasks],
    )


def _listing(app: App, recipient_id: str) -> Listing | None:
    with app.sessions() as session:
        try:
            return load_listing(session, recipient_id, now=app.now())
        except NotFound:
            return None


def _page(
    token: str,
    listing: Listing,
    *,
    changes: list[Change] | None,
    moved: list[str] | None = None,
    error: InvalidInput | None = None,
    form: FormData | None = None,
) -> Response:
    local = listing.local_time
    posted = {n: form.get(n) for n in ("timezone", "quiet_start", "quiet_end")} if form else {}
    fields = {
        "timezone": posted.get("timezone") or (local.timezone if local else "UTC"),
        "quiet_start": posted.get("quiet_start", local.quiet_start if local else None) or "",
        "quiet_end": posted.get("quiet_end", local.quiet_end if local else None) or "",
    }
    context = {
        "token": token,
        "listing": listing,
        "changes": changes,
        "moved": moved or [],
        "error": None if error is None else {"message": error.message, "field": error.field},
        "fields": fields,
        "zone_groups": zone_groups(str(fields["timezone"])),
    }
    return render_page("preferences.html", context, status=422 if error else 200)


def _no_account() -> Response:
    return error_page(
        404,
        "No settings to show",
        "This account no longer exists, so it gets no reminder email.",
    )
