"""``/u/{token}``: RFC 8058 one-click unsubscribe and its confirmation page (DESIGN §8).

No API key: the signed token is the authority (``delivery/tokens.py``), verified without a
database lookup. A tampered, foreign or malformed token gets a 400 page and an expired one
a 410 page; nothing changes either way.

- ``POST`` with exactly ``List-Unsubscribe=One-Click`` (urlencoded or multipart, RFC 8058
  §3.2) turns the claim's scope off and answers 200 with a page: never a redirect (§3.1),
  no cookie, no CSRF token, idempotent.
- ``POST`` from our own confirmation form carries ``scope`` (``task``, ``workspace``,
  ``topic`` or ``all``, whichever the claim can name), passes the same-origin check
  (``pages.same_origin``) and applies that scope; the page it answers offers to undo it
  (``POST /u/{token}/resubscribe``).
- ``GET``/``HEAD`` show the confirmation page and change nothing: link scanners and
  prefetchers fetch URLs found in mail (RFC 8058 §1).
- Any other body is a 400 page.

The router also carries the preference page (``preferences_page``) and the stylesheet,
so ``create_web_app`` includes all recipient pages with one line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from scheduler.app import App
from scheduler.delivery.tokens import SCOPES, Scope, UnsubscribeClaim
from scheduler.errors import InvalidInput, NotFound
from scheduler.tables import Recipient, Task, Topic, Workspace
from scheduler.web.pages import (
    Link,
    cross_site_page,
    error_page,
    follow_link,
    read_form,
    render_page,
    same_origin,
    stylesheet_response,
)
from scheduler.web.preference_form import masked_address
from scheduler.web.preferences_page import router as preferences_router

ONE_CLICK_FIELD: Final = "List-Unsubscribe"
ONE_CLICK_VALUE: Final = "One-Click"
SOURCE_ONE_CLICK: Final = "one-click"
SOURCE_PAGE: Final = "unsubscribe-page"

router = APIRouter(include_in_schema=False)


@dataclass(frozen=True)
class ScopeChoice:
    scope: Scope
    label: str
    detail: str | None


async def small_form(request: Request) -> FormData | None:
    return await read_form(request, max_fields=8)


SmallForm = Annotated[FormData | None, Depends(small_form)]


@router.get("/static/pages.css")
def stylesheet() -> Response:
    return stylesheet_response()


def _verify(token: str) -> Callable[[App, datetime], UnsubscribeClaim]:
    return lambda app, now: app.signer.verify(token, now=now)


@router.api_route("/u/{token}", methods=["GET", "HEAD"])
def confirm(token: str, request: Request) -> Response:
    link = follow_link(request, _verify(token))
    if not isinstance(link, Link):
        return link
    app, claim = link.app, link.subject
    return render_page(
        "unsubscribe_confirm.html",
        {
            "token": token,
            "choices": _choices(app, claim),
            "default_scope": claim.scope,
            "preferences_url": _preferences_url(link),
            "address": _address(app, claim.recipient_id),
        },
    )


@router.post("/u/{token}")
def unsubscribe(token: str, request: Request, form: SmallForm) -> Response:
    # Not a ``form_post`` link: the RFC 8058 one-click body comes with no origin at all.
    link = follow_link(request, _verify(token))
    if not isinstance(link, Link):
        return link
    app, claim = link.app, link.subject
    if form is not None and "scope" in form:
        if not same_origin(request, app.settings.base_url):
            return cross_site_page()
        choice = _chosen(app, claim, form)
        source = SOURCE_PAGE
    elif form is not None and _is_one_click(form):
        choice = _choice_for(_choices(app, claim), claim.scope)
        source = SOURCE_ONE_CLICK
    else:
        choice = None
    if choice is None:
        return _bad_form()
    try:
        return _switch(link, token, choice, source=source, resubscribed=False)
    except InvalidInput:  # the claim's topic no longer exists
        return _bad_form()


@router.post("/u/{token}/resubscribe")
def resubscribe(token: str, request: Request, form: SmallForm) -> Response:
    link = follow_link(request, _verify(token), form_post=True)
    if not isinstance(link, Link):
        return link
    choice = _chosen(link.app, link.subject, form) if form is not None else None
    if choice is None:
        return _bad_form()
    return _switch(link, token, choice, source=SOURCE_PAGE, resubscribed=True)


def _switch(
    link: Link[UnsubscribeClaim],
    token: str,
    choice: ScopeChoice,
    *,
    source: str,
    resubscribed: bool,
) -> Response:
    """Turn ``choice`` off (or back on) for the claim's recipient; the page saying so."""
    store, claim = link.app.preferences, link.subject
    change = store.resubscribe if resubscribed else store.unsubscribe
    try:
        change(claim.recipient_id, choice.scope, **_targets(claim), now=link.now, source=source)
    except NotFound:
        # The account is gone: nothing is sent to it, which is what was asked.
        return _gone()
    return render_page(
        "unsubscribe_done.html",
        {
            "token": token,
            "choice": choice,
            "resubscribed": resubscribed,
            "preferences_url": _preferences_url(link),
        },
    )


def _is_one_click(form: FormData) -> bool:
    # RFC 8058 §3.1: the body is the single key/value pair List-Unsubscribe=One-Click.
    items = list(form.multi_items())
    return items == [(ONE_CLICK_FIELD, ONE_CLICK_VALUE)]


def _chosen(app: App, claim: UnsubscribeClaim, form: FormData) -> ScopeChoice | None:
    values = form.getlist("scope")
    if len(values) != 1 or values[0] not in SCOPES:
        return None
    return _choice_for(_choices(app, claim), str(values[0]))


def _choice_for(choices: list[ScopeChoice], scope: str) -> ScopeChoice | None:
    return next((choice for choice in choices if choice.scope == scope), None)


def _targets(claim: UnsubscribeClaim) -> dict[str, str | None]:
    return {"topic": claim.topic, "task_id": claim.task_id, "workspace_id": claim.workspace_id}


def _choices(app: App, claim: UnsubscribeClaim) -> list[ScopeChoice]:
    """The scopes this claim can name, narrowest first, with the names the recipient knows."""
    with app.sessions() as session:
        task = session.get(Task, claim.task_id) if claim.task_id else None
        workspace = session.get(Workspace, claim.workspace_id) if claim.workspace_id else None
        topic = session.get(Topic, claim.topic)
    choices: list[ScopeChoice] = []
    if claim.task_id is not None:
        choices.append(ScopeChoice("task", "Reminders for this task", task.title if task else None))
    if claim.workspace_id is not None:
        name = workspace.name if workspace else None
        choices.append(ScopeChoice("workspace", "Everything about this workspace", name))
    description = topic.description if topic else None
    choices.append(ScopeChoice("topic", "This kind of email", description))
    choices.append(ScopeChoice("all", "All reminder email from Time Plan", None))
    return choices


def _address(app: App, recipient_id: str) -> str | None:
    """The recipient's address, masked: a reader can tell the link is about their mail."""
    with app.sessions() as session:
        recipient = session.get(Recipient, recipient_id)
    return masked_address(recipient.email) if recipient is not None else None


def _preferences_url(link: Link[UnsubscribeClaim]) -> str:
    token = link.app.signer.sign_preferences(link.subject.recipient_id, now=link.now)
    return f"/preferences/{token}"


def _gone() -> Response:
    return render_page(
        "error.html",
        {
            "title": "Nothing to unsubscribe",
            "message": "This account no longer exists, so it gets no reminder email.",
        },
    )


def _bad_form() -> Response:
    return error_page(
        400,
        "Nothing was changed",
        "The request did not say what to unsubscribe from. Open the link from the email "
        "again and use the button on the page.",
    )


router.include_router(preferences_router)
