"""``/ops``: the operator dashboard (DESIGN §9), HTML for people with an ``ops`` key.

Sign in with the key (:mod:`scheduler.web.ops_session` keeps a signed session in an
HttpOnly cookie); see the last 30 days as charts against the ramp limit and the SES
thresholds, the ramp's audit log, and change the ramp with the same store calls the CLI
and ``/ops/ramp`` make, audited as ``key:<id>``.

Every page carries a strict Content-Security-Policy: nothing loads but our stylesheet,
no script runs, forms post only to us and no site can frame the controls
(https://www.w3.org/TR/CSP3/). The charts are inline SVG drawn on the server.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from scheduler.app import App, signing_keys
from scheduler.errors import Conflict, InvalidInput
from scheduler.keys import Principal
from scheduler.tables import ApiKey
from scheduler.web.ops_dashboard import load_dashboard
from scheduler.web.ops_session import (
    COOKIE,
    OpsSession,
    SessionCodec,
    clear_cookie,
    origin_of,
    same_origin,
    set_cookie,
)
from scheduler.web.pages import render_page

log = logging.getLogger(__name__)

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# On top of the recipient pages' headers (``pages.PAGE_HEADERS``: nosniff, no-store,
# noindex). Referrer-Policy same-origin rather than no-referrer: a browser then sends our
# real Origin on form posts (with no-referrer it sends "Origin: null", which the origin
# check cannot trust); no ops URL carries a secret.
OPS_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "same-origin",
}
ACTIONS: Final = ("set", "pause", "resume", "auto")
DONE: Final[Mapping[str, str]] = {
    "set": "The manual limit is set.",
    "pause": "Sending is paused.",
    "resume": "Sending has resumed.",
    "auto": "The ramp is back under the policy.",
}
_COUNT = re.compile(r"^\d{1,3}(?:[,_ ]?\d{3})*$|^\d+$")

router = APIRouter(prefix="/ops", include_in_schema=False)


class _Refused(Exception):
    """A form post that failed the CSRF or origin check: nothing is changed."""


# --- plumbing -----------------------------------------------------------------------------


def _app(request: Request) -> App:
    app: App = request.app.state.app
    return app


def _codec(request: Request) -> SessionCodec:
    codec: SessionCodec | None = getattr(request.app.state, "ops_sessions", None)
    if codec is None:
        codec = SessionCodec(signing_keys(_app(request).settings))
        request.app.state.ops_sessions = codec
    return codec


def _secure(request: Request) -> bool:
    """Mark the cookie Secure whenever the operator reaches us over https."""
    return request.url.scheme == "https" or _app(request).settings.base_url.startswith("https:")


def _session(request: Request) -> OpsSession | None:
    return _codec(request).loads(request.cookies.get(COOKIE), _app(request).now())


def _principal(app: App, session: OpsSession | None) -> Principal | None:
    """The signed-in key, if it still exists, is not revoked and has the ``ops`` scope."""
    if session is None or session.key_id is None:
        return None
    with app.sessions() as db:
        row = db.get(ApiKey, session.key_id)
    if row is None or row.revoked_at is not None:
        return None
    scopes = frozenset(row.scopes.split(","))
    return Principal(row.id, scopes) if "ops" in scopes else None


def _render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
    session: OpsSession | None = None,
) -> HTMLResponse:
    """The page (the recipient pages' environment, stylesheet and headers, with the ops
    CSP); ``session`` (if given) is (re)issued."""
    response = render_page(template, {"signed_in": None, **context}, status=status)
    response.headers.update(OPS_HEADERS)
    if session is not None:
        _issue(request, response, session)
    return response


def _issue(request: Request, response: Response, session: OpsSession) -> None:
    codec = _codec(request)
    value = codec.dumps(session, _app(request).now())
    set_cookie(response, value, secure=_secure(request), max_age=codec.max_age)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


async def _checked_form(request: Request, session: OpsSession | None) -> FormData:
    """The posted form if it came from our page in this session; else :class:`_Refused`."""
    own = {
        origin_of(_app(request).settings.base_url),
        f"{request.url.scheme}://{request.headers.get('host', '').lower()}",
    }
    if not same_origin(request.headers, {o for o in own if o}):
        raise _Refused("cross-origin post")
    form = await request.form(max_fields=10, max_files=0, max_part_size=4096)
    csrf = form.get("csrf")
    if session is None or not session.accepts(csrf if isinstance(csrf, str) else None):
        raise _Refused("missing or wrong CSRF token")
    return form


def _refused_page(request: Request, why: _Refused) -> HTMLResponse:
    log.info("ops: refused a form post (%s)", why)
    return _render(
        request,
        "ops/refused.html",
        {"title": "Nothing was changed"},
        status=403,
    )


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


# --- sign in and out ----------------------------------------------------------------------


@router.get("/login")
def login_page(request: Request) -> Response:
    session = _session(request)
    if _principal(_app(request), session) is not None:
        return _redirect("/ops")
    # A session without a key: it carries the CSRF secret the login form needs.
    session = OpsSession.fresh() if session is None else session
    return _render(
        request, "ops/login.html", {"csrf": session.csrf, "error": None}, session=session
    )


@router.post("/login")
async def login(request: Request) -> Response:
    session = _session(request)
    try:
        form = await _checked_form(request, session)
    except _Refused as why:
        return _refused_page(request, why)
    assert session is not None
    app = _app(request)
    principal = app.keys.authenticate(_text(form, "key"))
    if principal is None or "ops" not in principal.scopes:
        log.info("ops: refused a sign-in (wrong key or no ops scope)")
        error = "That is not an operator key. Check it and try again."
        context = {"csrf": session.csrf, "error": error}
        return _render(request, "ops/login.html", context, status=401)
    log.info("ops: %s signed in", principal.actor)
    response = _redirect("/ops")
    _issue(request, response, OpsSession.fresh(principal.key_id))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session = _session(request)
    try:
        await _checked_form(request, session)
    except _Refused as why:
        return _refused_page(request, why)
    response = _redirect("/ops/login")
    clear_cookie(response, secure=_secure(request))
    return response


# --- the dashboard ------------------------------------------------------------------------


@router.get("")
def dashboard(request: Request, done: str | None = None) -> Response:
    session = _session(request)
    principal = _principal(_app(request), session)
    if session is None or principal is None:
        return _redirect("/ops/login")
    notice = DONE.get(done or "")
    return _dashboard_page(request, session, principal, notice=notice)


def _dashboard_page(
    request: Request,
    session: OpsSession,
    principal: Principal,
    *,
    notice: str | None = None,
    error: InvalidInput | Conflict | None = None,
    failed: str | None = None,
    values: Mapping[str, str] | None = None,
) -> HTMLResponse:
    app = _app(request)
    context = {
        "title": "Sending dashboard",
        "board": load_dashboard(app, app.now()),
        "csrf": session.csrf,
        "signed_in": principal.key_id,
        "notice": notice,
        "error": None if error is None else {"message": error.message, "field": _field(error)},
        "failed": failed,
        "values": values or {},
    }
    status = 200 if error is None else 409 if isinstance(error, Conflict) else 422
    return _render(request, "ops/dashboard.html", context, status=status)


def _field(error: InvalidInput | Conflict) -> str | None:
    return error.field if isinstance(error, InvalidInput) else None


@router.post("/controls/{action}")
async def change_ramp(request: Request, action: str) -> Response:
    app = _app(request)
    session = _session(request)
    principal = _principal(app, session)
    try:
        form = await _checked_form(request, session)
    except _Refused as why:
        return _refused_page(request, why)
    if session is None or principal is None:
        return _redirect("/ops/login")
    if action not in ACTIONS:
        return _render(request, "ops/refused.html", {"title": "No such control"}, status=404)
    values = {name: _text(form, name) for name in ("daily_limit", "rate_per_second", "reason")}
    try:
        _apply(app, action, values, principal.actor)
    except (InvalidInput, Conflict) as exc:
        return _dashboard_page(request, session, principal, error=exc, failed=action, values=values)
    log.info("ops: %s changed the ramp (%s)", principal.actor, action)
    return _redirect(f"/ops?done={action}#ramp")


def _apply(app: App, action: str, values: Mapping[str, str], actor: str) -> None:
    now, reason, ramp = app.now(), values["reason"], app.ramp
    if action == "set":
        daily = _whole_number(values["daily_limit"], "daily_limit")
        rate = _optional_rate(values["rate_per_second"])
        ramp.set_manual(daily, rate, reason, actor, now)
    elif action == "pause":
        ramp.pause(reason, actor, now)
    elif action == "resume":
        ramp.resume(actor, now, reason)
    else:
        ramp.auto(actor, now, reason)


def _whole_number(text: str, field: str) -> int:
    if not _COUNT.match(text):
        raise InvalidInput("enter a whole number of messages, such as 5000", field=field)
    return int(re.sub(r"[,_ ]", "", text))


def _optional_rate(text: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise InvalidInput(
            "enter messages per second, such as 2.5", field="rate_per_second"
        ) from None
