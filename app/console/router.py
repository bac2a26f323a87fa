"""The console assembled: its pages under /web/admin, its own stylesheet (no CDN), and how
a missing sign-in, a page outside one's role or an expired form is answered (the sign-in
form; 403 with a page naming the missing permission)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from app.console import pages, signin
from app.console.render import CONSOLE, Refused, SignInFirst, page, sign_in_url, visitor

STATIC = Path(__file__).parent / "static"

# Every part of the console (the tests enumerate the routes of each).
PARTS = (signin.router, pages.router)
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


def install(app: FastAPI) -> None:
    app.mount(CONSOLE + "/static", StaticFiles(directory=STATIC), name="console-static")
    app.include_router(router)
    app.add_exception_handler(SignInFirst, sign_in_first)
    app.add_exception_handler(Refused, refused)
