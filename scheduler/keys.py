"""API keys: ``tp_<id>_<secret>``; only the SHA-256 of the secret is stored.

The secret has 256 bits of entropy, so a fast hash is enough (no password stretching
needed) and verification is a constant-time compare of digests.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from scheduler.db import transaction
from scheduler.errors import InvalidInput
from scheduler.tables import ApiKey

SCOPES = frozenset({"rules", "ops"})
PREFIX = "tp"


@dataclass(frozen=True)
class Principal:
    key_id: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        return f"key:{self.key_id}"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def create(self, scopes: set[str], *, now: datetime, name: str = "") -> str:
        unknown = set(scopes) - SCOPES
        if not scopes or unknown:
            raise InvalidInput(f"scope must be one of {', '.join(sorted(SCOPES))}", field="scope")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        with transaction(self._sessions) as session:
            session.add(
                ApiKey(
                    id=key_id,
                    secret_hash=_digest(secret),
                    scopes=",".join(sorted(scopes)),
                    name=name,
                    created_at=now,
                )
            )
        return f"{PREFIX}_{key_id}_{secret}"

    def authenticate(self, presented: str) -> Principal | None:
        parts = presented.split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            return None
        _, key_id, secret = parts
        with self._sessions() as session:
            row = session.get(ApiKey, key_id)
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_hash, _digest(secret)):
            return None
        return Principal(key_id=row.id, scopes=frozenset(row.scopes.split(",")))
