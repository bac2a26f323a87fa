"""The storefront assembled: its pages under /web, its own static files (no CDN: the
pages work offline), the entry links of the mails, and how a missing sign-in or CSRF
token is answered (a redirect to the sign-in form; 403 with a page)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import URL
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.pages.csrf import CsrfRefused
from app.web import account, assets, follow, news, operator, public, shop, support
from app.web.render import SignInFirst, page, redirect, visitor

STATIC = Path(__file__).parent / "static"
CONSOLE = "/web/admin"

# Every part of the storefront (the tests enumerate the routes of each).
PARTS = (
    public.router,
    shop.router,
    follow.router,
    news.router,
    account.router,
    support.router,
    operator.router,
)
router = APIRouter(prefix="/web", include_in_schema=False)
for part in PARTS:
    router.include_router(part)


async def sign_in_first(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInFirst)
    who = await visitor(request)
    return redirect(who, str(URL("/web/").include_query_params(next=exc.path)))


async def csrf_refused(request: Request, exc: Exception) -> Response:
    who = await visitor(request)
    return page(who, "message.html", 403, message=who._("The form has expired; please try again."))


def pages_not_found(app: FastAPI) -> None:
    """An unknown storefront address answers a page in the visitor's language; every
    other HTTP error keeps the handler installed before (problem JSON)."""
    before = app.exception_handlers[StarletteHTTPException]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        path = request.url.path
        if exc.status_code == 404 and path.startswith("/web/") and not path.startswith(CONSOLE):
            who = await visitor(request)
            return page(who, "message.html", 404, message=who._("This page does not exist."))
        answer = before(request, exc)
        assert not isinstance(answer, Response)
        return await answer

    app.add_exception_handler(StarletteHTTPException, http_error)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(public.entry)
    app.include_router(assets.router)
    app.mount("/web/static", StaticFiles(directory=STATIC), name="web-static")
    app.add_exception_handler(SignInFirst, sign_in_first)
    app.add_exception_handler(CsrfRefused, csrf_refused)
    app.add_middleware(assets.PagesGzip)
    pages_not_found(app)
