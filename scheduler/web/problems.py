"""RFC 9457 problem details: every error the HTTP API returns has this one shape.

https://www.rfc-editor.org/rfc/rfc9457 — ``type``, ``title``, ``status``, ``detail``, and
our extension ``field`` naming the offending input (dotted path) when there is one.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from scheduler.errors import Conflict, InvalidInput, NotFound, PeerError

PROBLEM_JSON = "application/problem+json"
BASE = "https://timeplanpush.com/problems/"


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    field: str | None = None


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    slug = title.lower().replace(" ", "-")
    body = Problem(type=BASE + slug, title=title, status=status, detail=detail, field=field)
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": title}
    for code, title in {
        400: "Malformed request body (not UTF-8, not decodable)",
        401: "Missing or wrong API key",
        403: "The key lacks the scope",
        404: "Not found",
        409: "Conflict",
        413: "Request body too large",
        422: "Invalid input",
    }.items()
}


def install(web: FastAPI) -> None:
    @web.exception_handler(InvalidInput)
    async def _invalid(_r: Request, exc: InvalidInput) -> JSONResponse:
        return problem(422, "Invalid input", exc.message, field=exc.field)

    @web.exception_handler(NotFound)
    async def _not_found(_r: Request, exc: NotFound) -> JSONResponse:
        return problem(404, "Not found", exc.message)

    @web.exception_handler(Conflict)
    async def _conflict(_r: Request, exc: Conflict) -> JSONResponse:
        return problem(409, "Conflict", exc.message)

    @web.exception_handler(PeerError)
    async def _peer(_r: Request, exc: PeerError) -> JSONResponse:
        return problem(503, "Service unavailable", exc.message, headers={"Retry-After": "5"})

    @web.exception_handler(RequestValidationError)
    async def _validation(_r: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
        message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        return problem(422, "Invalid input", message, field=".".join(loc) or None)

    @web.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        titles = {
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not found",
            405: "Method not allowed",
            413: "Request body too large",
            400: "Bad request",
        }
        return problem(
            exc.status_code,
            titles.get(exc.status_code, "Error"),
            str(exc.detail),
            headers=getattr(exc, "headers", None),
        )
