"""The console's request context and rendering: who asks (the staff member of the session
cookie, or nobody), in which language, what their role lets them see, and the page with
its CSRF token under the pages' Content-Security-Policy.

The session cookie carries a staff session token (stored as SHA-256), HttpOnly,
SameSite=Strict, sent only to /web/admin, Secure when PUBLIC_URL is https. A page declares
the permission it needs (`permitted("audit:read")`); a signed-in member without it gets a
403 page naming it, an anonymous visitor the sign-in form.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import URL, UploadFile

from app.errors import DomainError
from app.http.audit import Auditor
from app.http.auth import Principal
from app.http.context import Services, get_services
from app.http.problems import Problem
from app.pages import i18n
from app.pages.csrf import CSRF_FIELD, CsrfRefused, check_csrf, csrf_seed, csrf_token, finish
from app.pages.export import Cell, csv_response
from app.pages.render import environment, html_page
from app.staff import service as staff

HERE = Path(__file__).parent
CONSOLE = "/web/admin"
STAFF_COOKIE = "panel_staff"
LANGUAGE_COOKIE = "panel_staff_lang"
CSRF_PURPOSE = "console"  # a storefront form's token is no console token
templates = environment(HERE / "templates")


def N_(text: str) -> str:
    """Marks a text translated when shown (the page calls `_` on it)."""
    return text


# The console's menu: what each entry needs, where it goes, what it says.
MENU = (
    ("users:read", CONSOLE + "/users", N_("Customers")),
    ("orders:read", CONSOLE + "/orders", N_("Orders")),
    ("tickets:read", CONSOLE + "/tickets", N_("Tickets")),
    ("catalog:read", CONSOLE + "/services", N_("Services")),
    ("providers:read", CONSOLE + "/providers", N_("Providers")),
    ("payments:read", CONSOLE + "/payments", N_("Payments")),
    ("reports:read", CONSOLE + "/margin", N_("Margin")),
    ("privacy:read", CONSOLE + "/privacy", N_("Privacy")),
    ("audit:read", CONSOLE + "/audit", N_("Audit log")),
    ("news:read", CONSOLE + "/news", N_("News")),
    ("settings:read", CONSOLE + "/settings", N_("Settings")),
    ("settings:read", CONSOLE + "/legal", N_("Legal texts")),
    ("staff:read", CONSOLE + "/staff", N_("Staff")),
)


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

    def number(self, value: Decimal | int) -> str:
        return i18n.number(value, self.language)

    def when(self, moment: datetime | None) -> str:
        return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else ""

    def error(self, exc: Exception) -> Failure:
        """What a refused action shows: its status and words (a domain error's own, or
        the hint of the first field a form got wrong)."""
        if isinstance(exc, DomainError):
            return Failure(exc.http_status, self._(exc.message))
        if isinstance(exc, Problem):
            return Failure(exc.status_code, self._(str(exc.detail)))
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            if not first["loc"]:  # a rule across fields: its own words
                return Failure(422, self._(str(first["msg"]).removeprefix("Value error, ")))
            name = str(first["loc"][-1])
            hint = FIELD_HINTS.get(name)
            if hint is not None:
                return Failure(422, self._(hint))
            return Failure(422, self._("Check the field %(field)s.", field=name))
        if isinstance(exc, ValueError):
            return Failure(422, self._(str(exc)))
        raise exc

    @asynccontextmanager
    async def acting(self) -> AsyncIterator[tuple[AsyncSession, Auditor]]:
        """A transaction and the audit log's writer naming this member: every change the
        console makes is written with its audit entry, or not at all."""
        async with self.services.db.transaction() as tx:
            yield tx, Auditor(tx, self.principal)


# What to say when a form's field is refused by the input rules of /admin/v1.
FIELD_HINTS = {
    "amount": N_("Enter an amount: a number with at most 8 decimals (above 0 for a top-up)."),
    "reason": N_("Write a reason (at most 300 characters)."),
    "payment_ref": N_("The payment reference is at most 150 characters."),
    "rate": N_("Enter a rate: a number of at least 0 with at most 8 decimals."),
    "discount_percent": N_("Enter a discount from 0 to 100 with at most 2 decimals."),
    "message": N_("Write a message."),
    "name": N_("Enter a name."),
    "email": N_("Enter an email address."),
    "provider_order_id": N_("Enter the provider's order id."),
    "status": N_("Choose a status."),
    "start_count": N_("Enter a whole number of at least 0."),
    "remains": N_("Enter a whole number of at least 0."),
    "multiplier": N_("Enter a multiplier above 0."),
    "position": N_("Enter a whole number."),
}


@dataclass(frozen=True)
class Failure:
    """An action refused by the rules: the page is shown again with this, and this status."""

    status: int
    message: str


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


class Permit:
    """The dependency of a page that needs `permission` (`Depends(Permit("audit:read"))`):
    the signed-in member when their role holds it, a 403 page naming it otherwise. The
    permission stays readable on the dependency, which is how the tests walk every page
    and check each declares one."""

    def __init__(self, permission: str) -> None:
        self.permission = permission

    async def __call__(self, request: Request) -> Who:
        found = await signed_in(request)
        if not found.may(self.permission):
            raise Refused(403, refusal_words(found, self.permission), self.permission)
        return found


def refusal_words(who: Who, permission: str) -> str:
    return who._(
        "Your role (%(role)s) does not have the permission %(permission)s.",
        role=who.principal.role,
        permission=permission,
    )


def require(who: Who, permission: str) -> None:
    """A second permission an action needs besides its page's (403 page without it)."""
    if not who.may(permission):
        raise Refused(403, refusal_words(who, permission), permission)


def permitted(permission: str) -> Permit:
    return Permit(permission)


def page(who: Who, name: str, status: int = 200, **values: Any) -> Response:
    settings = who.services.settings
    context = {
        "_": who._,
        "lang": who.language,
        "who": who,
        "money": who.money,
        "when": who.when,
        "number": who.number,
        "url_with": lambda **changes: url_with(who.request, **changes),
        "menu": MENU,
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
    fields, _ = await posted_with_files(who)
    return fields


async def posted_with_files(who: Who) -> tuple[dict[str, str], dict[str, UploadFile]]:
    """As `posted`, with the form's uploaded files."""
    form = await who.request.form()
    fields = {k: v[:MAX_FIELD] for k, v in form.items() if isinstance(v, str)}
    try:
        check_csrf(who.services.settings, who.request, fields.pop(CSRF_FIELD, None), CSRF_PURPOSE)
    except CsrfRefused:
        raise Refused(403, who._("The form has expired; please try again.")) from None
    return fields, {k: v for k, v in form.items() if isinstance(v, UploadFile)}


def url_with(request: Request, **changes: object) -> str:
    """This page's address with some query parameters changed (None removes one)."""
    params = {k: v for k, v in request.query_params.items() if k not in changes}
    params.update({k: str(v) for k, v in changes.items() if v is not None and v != ""})
    return str(URL(request.url.path).include_query_params(**params))


def csv_download(who: Who, name: str, header: list[str], rows: list[list[Cell]]) -> Response:
    """A list as a CSV attachment, its header in the member's language."""
    return csv_response(f"{name}.csv", [who._(h) for h in header], rows)
