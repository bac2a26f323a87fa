"""The console assembled: its pages under /web/admin, its own stylesheet (no CDN), and how
a missing sign-in, a page outside one's role or an expired form is answered (the sign-in
form; 403 with a page naming the missing permission)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from app.console import (
    affiliates,
    catalog,
    legal,
    money,
    news,
    orders,
    owner,
    pages,
    providers,
    signin,
    tickets,
    users,
)
from app.console.render import CONSOLE, Refused, SignInFirst, page, sign_in_url, visitor
from app.errors import DomainError

STATIC = Path(__file__).parent / "static"

# Every part of the console (the tests enumerate the routes of each).
PARTS = (
    signin.router,
    pages.router,
    users.router,
    orders.router,
    tickets.router,
    catalog.router,
    providers.router,
    money.router,
    affiliates.router,
    news.router,
    legal.router,
    owner.router,
)
router = APIRouter(prefix=CONSOLE, include_in_schema=False)
for part in PARTS:
    router.include_router(part)


async def sign_in_first(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInFirst)
    return RedirectResponse(sign_in_url(exc.path), status_code=303)


async def refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Refused)
    who = await visitor(request)
    return page(who, "message.html", exc.status, message=exc.message, permission=exc.permission)


async def not_shown(request: Request, exc: Exception) -> Response:
    """A page that cannot be shown: a missing record (404) or an address that does not
    parse (404), with the words of the refusal."""
    who = await visitor(request)
    if who.signed is None or who.signed.enrolling:
        return RedirectResponse(sign_in_url(request.url.path), status_code=303)
    if isinstance(exc, DomainError):
        failure = who.error(exc)
        return page(who, "message.html", failure.status, message=failure.message)
    return page(who, "message.html", 404, message=who._("Not found"))


Handler = Callable[[Request, Exception], Awaitable[Response]]


def console_first(fallback: Handler | None, handler: Handler) -> Handler:
    """An error handler answering console paths with a page, the others as before."""

    async def answer(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith(CONSOLE + "/") or fallback is None:
            return await handler(request, exc)
        return await fallback(request, exc)

    return answer


def install(app: FastAPI) -> None:
    """Mount the console; its pages answer a malformed address (an id that is no number)
    and a missing record with a 404 page, never the operator API's problem JSON."""
    app.mount(CONSOLE + "/static", StaticFiles(directory=STATIC), name="console-static")
    app.include_router(router)
    app.add_exception_handler(SignInFirst, sign_in_first)
    app.add_exception_handler(Refused, refused)
    for kind in (RequestValidationError, DomainError):
        earlier = cast(Handler | None, app.exception_handlers.get(kind))
        app.add_exception_handler(kind, console_first(earlier, not_shown))
