"""The console's request context and rendering: who asks (the staff member of the session
cookie, or nobody), in which language, what their role lets them see, and the page with
its CSRF token under the pages' Content-Security-Policy.

The session cookie carries a staff session token (stored as SHA-256), HttpOnly,
SameSite=Strict, sent only to /web/admin, Secure when PUBLIC_URL is https. A page declares
the permission it needs (`permitted("audit:read")`); a signed-in member without it gets a
403 page naming it, an anonymous visitor the sign-in form.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import URL

from app.http.auth import Principal
from app.http.context import Services, get_services
from app.pages import i18n
from app.pages.csrf import CSRF_FIELD, CsrfRefused, check_csrf, csrf_seed, csrf_token, finish
from app.pages.render import environment, html_page
from app.staff import service as staff

HERE = Path(__file__).parent
CONSOLE = "/web/admin"
STAFF_COOKIE = "panel_staff"
LANGUAGE_COOKIE = "panel_staff_lang"
CSRF_PURPOSE = "console"  # a storefront form's token is no console token
templates = environment(HERE / "templates")


def words(language: str) -> dict[str, str]:
    return i18n.read_catalog(HERE / "locale", language)


class SignInFirst(Exception):
    """A console page was asked for without a signed-in staff member."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class Refused(Exception):
    """Answered with a page saying why (403 outside one's role, 403 expired form, 404)."""

    def __init__(self, status: int, message: str, permission: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.permission = permission


@dataclass
class Who:
    """Who asks for a console page, and in which language."""

    request: Request
    services: Services
    language: str
    signed: staff.SignedIn | None = None

    @property
    def _(self) -> i18n.Translate:
        return i18n.translator_of(words(self.language))

    @property
    def member(self) -> staff.SignedIn:
        """The signed-in member (a full session, not one still enrolling its 2FA)."""
        if self.signed is None or self.signed.enrolling:
            raise SignInFirst(self.request.url.path)
        return self.signed

    @property
    def principal(self) -> Principal:
        return self.member.principal

    def may(self, permission: str) -> bool:
        return self.signed is not None and self.principal.may(permission)

    def money(self, value: Decimal) -> str:
        return i18n.money(value, self.services.settings.currency, self.language)

    def when(self, moment: datetime) -> str:
        return moment.strftime("%Y-%m-%d %H:%M UTC")


async def visitor(request: Request) -> Who:
    services = get_services(request)
    found = Who(request, services, i18n.DEFAULT)
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    token = request.cookies.get(STAFF_COOKIE)
    if token:
        async with services.db.session() as session:
            found.signed = await staff.resolve_session(session, token)
        if found.signed is not None and chosen not in i18n.LANGUAGES:
            chosen = found.signed.member.language
    found.language = i18n.pick_language(chosen, request.headers.get("accept-language"))
    return found


async def signed_in(request: Request) -> Who:
    found = await visitor(request)
    found.member  # noqa: B018 - raises SignInFirst without a full session
    return found


def permitted(permission: str) -> Callable[[Request], Awaitable[Who]]:
    """The dependency of a page that needs `permission`."""

    async def check(request: Request) -> Who:
        found = await signed_in(request)
        if not found.may(permission):
            message = found._(
                "Your role (%(role)s) does not have the permission %(permission)s.",
                role=found.principal.role,
                permission=permission,
            )
            raise Refused(403, message, permission)
        return found

    return check


def page(who: Who, name: str, status: int = 200, **values: Any) -> Response:
    settings = who.services.settings
    context = {
        "_": who._,
        "lang": who.language,
        "who": who,
        "money": who.money,
        "when": who.when,
        "csrf_field": CSRF_FIELD,
        "csrf": csrf_token(settings, csrf_seed(who.request), CSRF_PURPOSE),
        "path": who.request.url.path if who.request.method == "GET" else CONSOLE + "/",
        **values,
    }
    response = html_page(templates.get_template(name).render(context), status)
    return finish(who.request, response, settings)


def redirect(who: Who, to: str) -> Response:
    return finish(who.request, RedirectResponse(to, status_code=303), who.services.settings)


def inside(target: str | None) -> str:
    """A place to go back to after signing in: a console path, never another site."""
    if target and target.startswith(CONSOLE + "/") and "//" not in target and "\\" not in target:
        return target
    return CONSOLE + "/"


def sign_in_url(path: str) -> str:
    return str(URL(CONSOLE + "/login").include_query_params(next=inside(path)))


MAX_FIELD = 20_000


async def posted(who: Who) -> dict[str, str]:
    """The form's fields, its CSRF token checked first (403 page without a valid one)."""
    form = await who.request.form()
    fields = {k: v[:MAX_FIELD] for k, v in form.items() if isinstance(v, str)}
    try:
        check_csrf(who.services.settings, who.request, fields.pop(CSRF_FIELD, None), CSRF_PURPOSE)
    except CsrfRefused:
        raise Refused(403, who._("The form has expired; please try again.")) from None
    return fields
