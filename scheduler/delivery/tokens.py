"""Signed tokens for one-click unsubscribe links and the preference page.

A token carries everything the ``/u/{token}`` endpoint needs (recipient, the scope the link
acts on, the message's topic, workspace, task and message id), so verifying it needs no
database lookup (DESIGN.md §8; RFC 8058 §3.1 asks that the URI identify recipient and list
by itself and carry a hard-to-forge component: https://www.rfc-editor.org/rfc/rfc8058#section-3.1).

Signing is itsdangerous ``URLSafeTimedSerializer`` with HMAC-SHA256. Keys rotate: the
first key in ``keys`` signs, every key verifies, so a new key goes first and an old one
stays in the list until the links it signed have expired.

Time is a parameter. itsdangerous reads the clock through ``TimestampSigner.get_timestamp``;
``PinnedTimeSigner`` overrides it with the ``now`` the caller passes, so signing and
expiry are deterministic and testable without freezing the clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal, cast

from itsdangerous import (
    BadPayload,
    BadSignature,
    SignatureExpired,
    TimestampSigner,
    URLSafeTimedSerializer,
)

from scheduler.clock import utc
from scheduler.errors import InvalidInput

Scope = Literal["topic", "task", "workspace", "all"]
InvalidReason = Literal["malformed", "bad_signature", "expired", "not_yet_valid"]

SCOPES: Final[tuple[Scope, ...]] = ("topic", "task", "workspace", "all")
PREFERENCES_SALT: Final = "preferences"
MIN_KEY_LENGTH: Final = 16

# One letter per scope keeps the payload (and so the URL) short.
_SCOPE_CODE: Final[Mapping[str, str]] = {"topic": "p", "task": "k", "workspace": "w", "all": "a"}
_SCOPE_BY_CODE: Final[Mapping[str, Scope]] = {
    code: cast(Scope, scope) for scope, code in _SCOPE_CODE.items()
}


class InvalidToken(InvalidInput):
    """A token that is tampered with, signed by a foreign key, expired or malformed.

    ``reason`` is one of ``malformed``, ``bad_signature``, ``expired``, ``not_yet_valid``;
    the web layer shows the same 4xx page for all of them and changes nothing.
    """

    def __init__(self, reason: InvalidReason) -> None:
        super().__init__(f"invalid token: {reason}", field="token")
        self.reason: InvalidReason = reason


@dataclass(frozen=True)
class UnsubscribeClaim:
    """What an unsubscribe link says: who, and what the link turns off by default.

    ``scope`` is the default the one-click POST acts on; the confirmation page may offer a
    narrower or wider one, which is why workspace and task ids travel along.
    """

    recipient_id: str
    scope: Scope
    topic: str
    workspace_id: str | None
    task_id: str | None
    message_id: int | str

    def __post_init__(self) -> None:
        if not self.recipient_id:
            raise InvalidInput("recipient_id must not be empty", field="recipient_id")
        if self.scope not in SCOPES:
            raise InvalidInput(f"unknown scope {self.scope!r}", field="scope")
        if not self.topic:
            raise InvalidInput("topic must not be empty", field="topic")
        if self.scope == "task" and self.task_id is None:
            raise InvalidInput("scope 'task' needs a task_id", field="task_id")
        if self.scope == "workspace" and self.workspace_id is None:
            raise InvalidInput("scope 'workspace' needs a workspace_id", field="workspace_id")


class PinnedTimeSigner(TimestampSigner):
    """A ``TimestampSigner`` whose clock is the ``now`` given at construction."""

    def __init__(self, *args: Any, pinned_timestamp: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pinned_timestamp = pinned_timestamp

    def get_timestamp(self) -> int:
        return self._pinned_timestamp


class TokenSigner:
    """Signs and verifies unsubscribe and preference-page tokens.

    ``keys``: the first signs, all verify (rotation). ``max_age``: how long a token stays
    valid; both kinds of token share it.
    """

    def __init__(
        self, keys: Sequence[str], *, max_age: timedelta, salt: str = "unsubscribe"
    ) -> None:
        if isinstance(keys, str) or not keys:
            raise ValueError("TokenSigner needs a non-empty sequence of keys")
        if any(len(key) < MIN_KEY_LENGTH for key in keys):
            raise ValueError(f"every signing key needs at least {MIN_KEY_LENGTH} characters")
        if max_age <= timedelta(0):
            raise ValueError("max_age must be positive")
        if salt == PREFERENCES_SALT:
            raise ValueError(f"salt {PREFERENCES_SALT!r} is reserved for preference tokens")
        # itsdangerous signs with the *last* key and tries keys newest first; our
        # convention is "first key signs", so hand them over reversed.
        self._keys = tuple(reversed(keys))
        self._max_age_seconds = int(max_age.total_seconds())
        self._salt = salt

    def sign(self, claim: UnsubscribeClaim, *, now: datetime) -> str:
        return self._serializer(self._salt, now).dumps(_encode_claim(claim))

    def verify(self, token: str, *, now: datetime) -> UnsubscribeClaim:
        payload = self._load(token, self._salt, now)
        try:
            return _decode_claim(payload)
        except (KeyError, TypeError, ValueError, InvalidInput) as exc:
            raise InvalidToken("malformed") from exc

    def sign_preferences(self, recipient_id: str, *, now: datetime) -> str:
        if not recipient_id:
            raise InvalidInput("recipient_id must not be empty", field="recipient_id")
        return self._serializer(PREFERENCES_SALT, now).dumps({"r": recipient_id})

    def verify_preferences(self, token: str, *, now: datetime) -> str:
        """Return the recipient id a preference-page token was signed for."""
        payload = self._load(token, PREFERENCES_SALT, now)
        recipient_id = payload.get("r") if isinstance(payload, dict) else None
        if not isinstance(recipient_id, str) or not recipient_id:
            raise InvalidToken("malformed")
        return recipient_id

    def _serializer(self, salt: str, now: datetime) -> URLSafeTimedSerializer:
        # A serializer per call: it is cheap, and pinning the time per instance keeps
        # concurrent callers with different `now` values apart.
        return URLSafeTimedSerializer(
            self._keys,
            salt=salt,
            signer=PinnedTimeSigner,
            signer_kwargs={
                "digest_method": hashlib.sha256,
                "key_derivation": "hmac",
                "pinned_timestamp": int(utc(now).timestamp()),
            },
        )

    def _load(self, token: str, salt: str, now: datetime) -> Any:
        serializer = self._serializer(salt, now)
        try:
            return serializer.loads(token, max_age=self._max_age_seconds)
        except SignatureExpired as exc:
            signed_at = exc.date_signed
            future = signed_at is not None and signed_at > utc(now)
            raise InvalidToken("not_yet_valid" if future else "expired") from exc
        except BadPayload as exc:
            # The signature checked out but the payload does not decode: we signed
            # something we cannot read back (an older payload format, say).
            raise InvalidToken("malformed") from exc
        except BadSignature as exc:
            # Tampered, signed by a key we do not hold, for another salt, or not a token
            # at all: itsdangerous cannot tell these apart, and neither need we.
            raise InvalidToken("bad_signature") from exc
        except (UnicodeError, ValueError) as exc:
            raise InvalidToken("malformed") from exc


def _encode_claim(claim: UnsubscribeClaim) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "r": claim.recipient_id,
        "s": _SCOPE_CODE[claim.scope],
        "t": claim.topic,
        "m": claim.message_id,
    }
    if claim.workspace_id is not None:
        payload["w"] = claim.workspace_id
    if claim.task_id is not None:
        payload["k"] = claim.task_id
    return payload


def _decode_claim(payload: Any) -> UnsubscribeClaim:
    if not isinstance(payload, dict):
        raise TypeError("payload is not an object")
    message_id = payload["m"]
    if isinstance(message_id, bool) or not isinstance(message_id, int | str):
        raise TypeError("message id must be an int or a string")
    return UnsubscribeClaim(
        recipient_id=_text(payload["r"]),
        scope=_SCOPE_BY_CODE[payload["s"]],
        topic=_text(payload["t"]),
        workspace_id=_optional_text(payload.get("w")),
        task_id=_optional_text(payload.get("k")),
        message_id=message_id,
    )


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)
