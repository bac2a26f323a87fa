"""/api/v2 served straight from the middleware stack: the one place that bypasses the
framework's routing.

Why: `/api/v2` is the hot path of every reseller script (balance and status polled all
day, `add` in bursts, `services` at each catalog sync of a chained panel). Routing,
dependency resolution and response validation cost more CPU than the single statement
behind most calls, so `DirectRoute` answers GET/POST /api/v2 before them and everything
else passes through. The route registered in router.py (for the OpenAPI document) runs
the same `handle`, so both give the same answers.

What this module guarantees, since no framework handler stands behind it: every answer
is `{"error": …}` in the protocol's shape, never a 500 and never problem JSON. A request
that cannot be read (bad multipart or one cut before its closing boundary, deep JSON…) is
`Incorrect request`; a body over API_MAX_BODY_BYTES is 413 `Request too large`, chunked or
not (BodySizeLimit answers it as the body streams in); the database or Redis failing is a
503; anything else unexpected is logged and answered as a 503 too.
"""

from __future__ import annotations

import logging
import time

import asyncpg
from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api_v2.actions import ACTIONS, run_action
from app.api_v2.context import get_context
from app.api_v2.lean import LEAN
from app.errors import DomainError, IncorrectRequest
from app.http.forms import RequestTooLarge, read_fields
from app.http.security import RateLimited, check_rate
from app.metrics import REQUEST_SECONDS, REQUESTS, child

log = logging.getLogger(__name__)

PATH = "/api/v2"
METHODS = ("GET", "POST")
UNAVAILABLE = "Service temporarily unavailable, try again later"
INFRASTRUCTURE = (
    OperationalError,
    DBAPIError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


def _error(message: str, status_code: int = 200) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code)


async def handle(request: Request) -> Response:
    started = time.perf_counter()
    response = await _handle(request)
    action = getattr(request.state, "action", "unknown")
    body = getattr(response, "body", b"")
    outcome = "error" if response.status_code not in (200, 304) or b'"error"' in body[:10] else "ok"
    child(REQUESTS, action, outcome).inc()
    child(REQUEST_SECONDS, action).observe(time.perf_counter() - started)
    return response


async def _read(request: Request, max_bytes: int) -> dict[str, str]:
    """The request's fields; anything that goes wrong while reading them is the client's
    request being unreadable (Incorrect request), whatever layer raised it."""
    try:
        return await read_fields(request, max_bytes)
    except DomainError:
        raise
    except Exception as exc:
        log.info("api v2 request unreadable: %s", type(exc).__name__)
        raise IncorrectRequest() from exc


async def _handle(request: Request) -> Response:
    ctx = get_context(request)
    try:
        fields = await _read(request, ctx.settings.api_max_body_bytes)
        await check_rate(
            ctx.jobs,
            ip=request.client.host if request.client else "unknown",
            key=fields.get("key"),
            per_ip=ctx.settings.rate_limit_per_ip,
            per_key=ctx.settings.rate_limit_per_key,
        )
        name = fields.get("action", "").strip().lower()
        request.state.action = name if name in ACTIONS else "unknown"
        lean = LEAN.get(name)
        if lean is not None:
            answer = await lean(ctx, fields, request.headers.get("if-none-match"))
            if answer is not None:
                return answer
        return JSONResponse(await run_action(ctx, name, fields))
    except RequestTooLarge as exc:
        return _error(exc.message, 413)  # as BodySizeLimit answers it on every route
    except DomainError as exc:
        return _error(exc.message)
    except RateLimited as exc:
        response = _error("Too many requests, try again later", 429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except INFRASTRUCTURE:
        log.exception("api v2 call failed on infrastructure")
        return _error(UNAVAILABLE, 503)
    except Exception:
        log.exception("api v2 call failed")
        return _error(UNAVAILABLE, 503)


class DirectRoute:
    """Serves /api/v2 ahead of the framework's routing (see the module's docstring): GET
    and POST run `handle`, other methods get 405 in the protocol's shape."""

    path = PATH  # read as the route label by the request metrics

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH:
            await self.app(scope, receive, send)
            return
        scope["route"] = self
        if scope["method"] in METHODS:
            response = await handle(Request(scope, receive))
        else:
            response = _error(IncorrectRequest.message, 405)
            response.headers["Allow"] = ", ".join(METHODS)
        await response(scope, receive, send)
