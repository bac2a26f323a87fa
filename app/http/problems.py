"""RFC 9457 problem details for the JSON APIs (/admin/v1, /client/v1). A domain error is
answered with the status, message and type its class declares (app/errors.py); nothing
here decides them."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.errors import DomainError

log = logging.getLogger(__name__)

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    409: "Conflict",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    502: "Bad Gateway",
}


class Problem(HTTPException):
    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(status_code=status, detail=detail)
        self.extra = extra


async def get_or_404(session: AsyncSession, model: Any, key: Any, what: str) -> Any:
    """The row, or a 404 problem naming what was missing."""
    row = await session.get(model, key)
    if row is None:
        raise Problem(404, f"{what} not found")
    return row


def problem_response(
    status: int, detail: Any, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }  # `type` in `extra` (a domain error's stable type) replaces about:blank
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def sqlstate(exc: BaseException) -> str:
    """The PostgreSQL error code behind a driver error ("" when there is none)."""
    seen: BaseException | None = exc
    while seen is not None:
        code = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(code, str):
            return code
        seen = getattr(seen, "orig", None) or seen.__cause__
    return ""


def install(app: FastAPI) -> None:
    """Admin paths answer problem JSON; everything else keeps FastAPI's defaults."""

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        extra = exc.extra if isinstance(exc, Problem) else {}
        return problem_response(exc.status_code, exc.detail, getattr(exc, "headers", None), **extra)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]
        return problem_response(422, "Invalid request", errors=errors)

    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DomainError)
        # A domain error may name more (a refused permission: `permission`).
        extra = getattr(exc, "extra", {})
        return problem_response(
            exc.http_status, exc.message, exc.headers, type=exc.problem_type, **extra
        )

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)

    async def data_error(request: Request, exc: Exception) -> JSONResponse:
        # A value the database cannot hold (out of range, malformed): the input is at fault.
        # Anything else from the database driver means it is unavailable.
        state = sqlstate(exc)
        log.warning(
            "database refused an operator request",
            extra={"sqlstate": state, "path": request.url.path, "error": str(exc.__cause__)},
        )
        if isinstance(exc, DataError) or state.startswith("22"):
            return problem_response(422, "A value is out of range or malformed")
        if isinstance(exc, IntegrityError) or state.startswith("23"):
            return problem_response(409, "Conflicts with existing data (unknown reference?)")
        return problem_response(503, "Database unavailable, try again later")

    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(DBAPIError, data_error)
