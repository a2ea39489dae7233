"""``/preferences/{token}``: the preference page reached from a reminder's footer (DESIGN §8).

``GET``/``HEAD`` show every level (``preference_form.load_listing``) and change nothing.
``POST`` saves the form: the signed preference token in the URL names the recipient, the
same-origin check (``pages.same_origin``) refuses posts steered from another site, and only
levels whose state differs from what is stored are written (``plan_changes``). The answer
is the page again, listing what changed; no redirect, so the list needs no session.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from scheduler.app import App
from scheduler.delivery.tokens import InvalidToken
from scheduler.errors import NotFound
from scheduler.web.pages import (
    app_of,
    cross_site_page,
    error_page,
    read_form,
    render_page,
    same_origin,
    token_error,
)
from scheduler.web.preference_form import Change, Listing, load_listing, plan_changes

SOURCE: str = "preferences-page"
# Two fields per level (shown + on) for a recipient with a great many rules.
MAX_FIELDS = 4000

router = APIRouter(include_in_schema=False)


async def preferences_form(request: Request) -> FormData | None:
    return await read_form(request, max_fields=MAX_FIELDS)


PreferencesForm = Annotated[FormData | None, Depends(preferences_form)]


@router.api_route("/preferences/{token}", methods=["GET", "HEAD"])
def show(token: str, request: Request) -> Response:
    app = app_of(request)
    now = app.now()
    try:
        recipient_id = app.signer.verify_preferences(token, now=now)
    except InvalidToken as exc:
        return token_error(exc)
    listing = _listing(app, recipient_id)
    if listing is None:
        return _no_account()
    return _page(token, listing, changes=None)


@router.post("/preferences/{token}")
def save(token: str, request: Request, form: PreferencesForm) -> Response:
    app = app_of(request)
    now = app.now()
    try:
        recipient_id = app.signer.verify_preferences(token, now=now)
    except InvalidToken as exc:
        return token_error(exc)
    if not same_origin(request, app.settings.base_url):
        return cross_site_page()
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
    if patch:
        try:
            app.preferences.patch(recipient_id, patch, now=now, source=SOURCE)
        except NotFound:
            return _no_account()
        listing = _listing(app, recipient_id) or listing
    return _page(token, listing, changes=changes)


def _listing(app: App, recipient_id: str) -> Listing | None:
    with app.sessions() as session:
        try:
            return load_listing(session, recipient_id, now=app.now())
        except NotFound:
            return None


def _page(token: str, listing: Listing, *, changes: list[Change] | None) -> Response:
    return render_page("preferences.html", {"token": token, "listing": listing, "changes": changes})


def _no_account() -> Response:
    return error_page(
        404,
        "No settings to show",
        "This account no longer exists, so it gets no reminder email.",
    )
