"""Bearer API keys with scopes (``rules`` for the backend, ``ops`` for operators).

A missing or wrong key is 401 with ``WWW-Authenticate: Bearer``; a valid key without the
scope is 403. Keys are verified against their stored hash (``scheduler.keys``).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from scheduler.keys import Principal

bearer = HTTPBearer(auto_error=False, description="An API key from `reminders keys create`.")


def require_scope(scope: str) -> Callable[..., Principal]:
    def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Depends(bearer),  # noqa: B008
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise HTTPException(401, "an API key is required", {"WWW-Authenticate": "Bearer"})
        principal: Principal | None = request.app.state.app.keys.authenticate(
            credentials.credentials
        )
        if principal is None:
            raise HTTPException(401, "the API key is not valid", {"WWW-Authenticate": "Bearer"})
        if scope not in principal.scopes:
            raise HTTPException(403, f"this key lacks the {scope!r} scope")
        return principal

    dependency.__name__ = f"require_{scope}"
    return dependency
