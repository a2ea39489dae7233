"""HTML pages for recipients: one Jinja2 environment, security headers, a same-origin check.

Every page this module renders carries the same headers:

- ``Content-Security-Policy``: nothing loads but our own stylesheet, forms post only to
  us, no page can be framed (clickjacking an unsubscribe button) and ``<base>`` cannot
  re-point relative URLs. https://www.w3.org/TR/CSP3/
- ``Referrer-Policy: no-referrer``: the URL holds a signed token; a click on an outbound
  link must not hand it to another site in ``Referer``.
- ``Cache-Control: no-store``: a page shows one recipient's choices; no shared cache keeps it.
- ``X-Content-Type-Options: nosniff`` and ``X-Robots-Tag: noindex`` (token URLs are private).

CSRF (decided here; DESIGN §8 leaves it open). The signed token in the URL is the
authority: it is unguessable and travels only in the recipient's own mail, so a forged
form cannot name a recipient. On top of that, state-changing posts from *our own* forms
pass :func:`same_origin`, which uses Fetch Metadata (``Sec-Fetch-Site``, sent by every
current browser: https://www.w3.org/TR/fetch-metadata/) and falls back to ``Origin``.
``Origin: null`` and a missing ``Origin`` pass: with ``Referrer-Policy: no-referrer`` the
Fetch standard makes a browser send ``Origin: null`` even on a same-origin form post
(https://fetch.spec.whatwg.org/#origin-header), and a client that sends neither header
is not a browser being steered by another site. The RFC 8058 one-click body is exempt:
mail providers post it from their servers with no context at all (RFC 8058 §3.2).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from scheduler.app import App
from scheduler.delivery.tokens import InvalidToken
from scheduler.web.ops_session import origin_of

log = logging.getLogger(__name__)

T = TypeVar("T")

TEMPLATE_DIR: Final = Path(__file__).parent / "templates"
STYLESHEET: Final = Path(__file__).parent / "static" / "pages.css"
STYLESHEET_URL: Final = "/static/pages.css"

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS: Final[Mapping[str, str]] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Robots-Tag": "noindex, nofollow",
}
# Fetch Metadata values a form on our own pages produces ("none": typed or bookmarked).
_SAME_SITE_VALUES: Final = frozenset({"same-origin", "none"})

_environment = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(enabled_extensions=("html",), default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    auto_reload=False,
)


def render_page(template: str, context: Mapping[str, Any], *, status: int = 200) -> HTMLResponse:
    """The named page, with the security headers every page carries."""
    values = {"stylesheet_url": STYLESHEET_URL, **context}
    html = _environment.get_template(template).render(values)
    return HTMLResponse(html, status_code=status, headers=dict(PAGE_HEADERS))


def error_page(status: int, title: str, message: str) -> HTMLResponse:
    return render_page("error.html", {"title": title, "message": message}, status=status)


def stylesheet_response() -> Response:
    # Our one stylesheet: small, versioned with the package, cacheable for a day.
    return Response(
        STYLESHEET.read_bytes(),
        media_type="text/css",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "public, max-age=86400",
        },
    )


def same_origin(request: Request, base_url: str) -> bool:
    """Whether a form post may have come from one of our own pages (module docstring)."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site.lower() in _SAME_SITE_VALUES
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return True
    # Either the public origin links are built with, or the host this request reached
    # (a browser's Host header is the site it is on; only the Origin can be foreign).
    claimed = origin_of(origin)
    return claimed is not None and claimed in {
        origin_of(base_url),
        f"{request.url.scheme}://{request.headers.get('host', '').lower()}",
        # Behind a TLS-terminating proxy the request arrives as http, the browser saw https.
        f"https://{request.headers.get('host', '').lower()}",
    }


def app_of(request: Request) -> App:
    app: App = request.app.state.app
    return app


async def read_form(request: Request, *, max_fields: int) -> FormData | None:
    """The posted form, or None unless the body is a small urlencoded/multipart form
    without files (Starlette answers other content types with an empty form)."""
    try:
        return await request.form(max_files=0, max_fields=max_fields, max_part_size=4096)
    except (HTTPException, MultiPartException, UnicodeDecodeError):
        return None


def token_error(exc: InvalidToken) -> HTMLResponse:
    """The page for a link whose token does not verify; nothing has changed."""
    log.info("refused a recipient link: %s", exc.reason)
    if exc.reason == "expired":
        return error_page(
            410,
            "This link has expired",
            "Links in reminder email stop working after a while. Use the link in a more "
            "recent reminder, or change your settings in Time Plan.",
        )
    return error_page(
        400,
        "This link does not work",
        "The link is incomplete or was changed. Open it again from the email, or change "
        "your settings in Time Plan. Nothing was changed.",
    )


def cross_site_page() -> HTMLResponse:
    log.info("refused a cross-site post to a recipient page")
    return error_page(
        403,
        "Nothing was changed",
        "This form was sent from another site. Open the link from the email and use the "
        "button on our page.",
    )


@dataclass(frozen=True)
class Link(Generic[T]):
    """A recipient link whose token verified: the app, the instant, what the token names."""

    app: App
    now: datetime
    subject: T


def follow_link(
    request: Request, verify: Callable[[App, datetime], T], *, form_post: bool = False
) -> Link[T] | HTMLResponse:
    """Verify a recipient link's token, e.g. ``lambda app, now: app.signer.verify(token,
    now=now)``; for a post from one of our own forms (``form_post``) also its origin.

    Returns the refusal page instead when either check fails; nothing has changed then.
    """
    app = app_of(request)
    now = app.now()
    try:
        subject = verify(app, now)
    except InvalidToken as exc:
        return token_error(exc)
    if form_post and not same_origin(request, app.settings.base_url):
        return cross_site_page()
    return Link(app, now, subject)
