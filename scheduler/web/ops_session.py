"""Operator sessions for the ``/ops`` pages: a signed cookie, CSRF tokens, an origin check.

The operator signs in once with an ``ops`` API key. The cookie then holds a *signed*
session (itsdangerous, HMAC-SHA256 with the app's signing keys and a salt of its own, so
no other token we sign can pass for a session): the key's id and a CSRF secret, never the
key itself. A stolen cookie is therefore worth at most one session's lifetime, and
revoking the key ends every session made with it (each request looks the key id up).

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's
page makes the browser send it) and ``Secure`` when the site is served over https
(https://developer.mozilla.org/en-US/docs/Web/HTTP/Cookies#restrict_access_to_cookies).

CSRF, defence in depth (OWASP CSRF cheat sheet,
https://cheatsheetseries.owasp.org/cheatsheets/Cross-Site_Request_Forgery_Prevention_Cheat_Sheet.html):
every form carries the session's CSRF secret in a hidden field (synchronizer token),
compared in constant time; and a POST must come from our own origin by Fetch Metadata
(``Sec-Fetch-Site``, https://www.w3.org/TR/fetch-metadata/) or else ``Origin``. The ops
pages send ``Referrer-Policy: same-origin`` so a browser's ``Origin`` on our own form posts
is the real origin, not ``null``; a ``null`` or foreign origin is refused. A client that
sends neither header is not a browser steered by another site, and still needs the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

from itsdangerous import BadData, URLSafeTimedSerializer
from starlette.responses import Response

from scheduler.clock import utc
from scheduler.delivery.tokens import PinnedTimeSigner

COOKIE: Final = "ops_session"
COOKIE_PATH: Final = "/ops"
SALT: Final = "ops-session"
MAX_AGE: Final = timedelta(hours=12)


@dataclass(frozen=True)
class OpsSession:
    """``csrf``: the secret every form echoes; ``key_id``: the signed-in key, if any."""

    csrf: str
    key_id: str | None = None

    @classmethod
    def fresh(cls, key_id: str | None = None) -> OpsSession:
        # A new secret at sign-in too: a token seen before sign-in is worth nothing after.
        return cls(csrf=secrets.token_urlsafe(32), key_id=key_id)

    def accepts(self, presented: str | None) -> bool:
        """Whether a form's CSRF field matches this session (constant-time)."""
        return bool(presented) and hmac.compare_digest(self.csrf, presented or "")


class SessionCodec:
    """Signs sessions into cookie values and reads them back (``None`` when invalid).

    ``keys``: the first signs, all verify, like the link tokens (key rotation).
    """

    def __init__(self, keys: Sequence[str], *, max_age: timedelta = MAX_AGE) -> None:
        if isinstance(keys, str) or not keys:
            raise ValueError("SessionCodec needs a non-empty sequence of keys")
        self._keys = tuple(reversed(keys))  # itsdangerous signs with the last key
        self.max_age = max_age

    def dumps(self, session: OpsSession, now: datetime) -> str:
        payload = {"c": session.csrf} | ({"k": session.key_id} if session.key_id else {})
        value: str = self._serializer(now).dumps(payload)
        return value

    def loads(self, value: str | None, now: datetime) -> OpsSession | None:
        if not value:
            return None
        try:
            payload = self._serializer(now).loads(value, max_age=int(self.max_age.total_seconds()))
        except (BadData, UnicodeError, ValueError):
            return None  # expired, tampered, another salt or key, or not ours at all
        if not isinstance(payload, dict) or not isinstance(payload.get("c"), str):
            return None
        key_id = payload.get("k")
        return OpsSession(csrf=payload["c"], key_id=key_id if isinstance(key_id, str) else None)

    def _serializer(self, now: datetime) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            self._keys,
            salt=SALT,
            signer=PinnedTimeSigner,
            signer_kwargs={
                "digest_method": hashlib.sha256,
                "key_derivation": "hmac",
                "pinned_timestamp": int(utc(now).timestamp()),
            },
        )


def set_cookie(response: Response, value: str, *, secure: bool, max_age: timedelta) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=int(max_age.total_seconds()),
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=secure,
    )


def clear_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(
        COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure
    )


def same_origin(headers: Mapping[str, str], own_origins: set[str]) -> bool:
    """Whether a POST came from one of our pages (module docstring). Header names lower-case."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site.lower() == "same-origin"
    origin = headers.get("origin")
    if origin is None:
        return True
    return origin_of(origin) in own_origins


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` in lower case, or None for ``null`` and non-URLs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"
