"""Rendering a page: the Jinja2 environment (autoescaped), the words and formats of the
request's language, the signed-in customer, the CSRF token, and the pages' own
Content-Security-Policy (scripts and styles only from the panel, no inline script)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.accounts import service as accounts
from app.customers import service as customers
from app.customers.errors import CustomerError
from app.customers.service import Customer
from app.errors import DomainError
from app.http.context import Services, get_services
from app.news import service as news
from app.pages.csrf import CSRF_FIELD, csrf_seed, csrf_token, finish
from app.pages.render import CSP as WEB_CSP
from app.pages.render import environment
from app.storefront import service as storefront
from app.web import i18n
from app.web.session import LANGUAGE_COOKIE, SESSION_COOKIE

HERE = Path(__file__).parent
templates = environment(HERE / "templates")


class SignInFirst(Exception):
    """A page that needs a signed-in customer was asked for without one."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


@dataclass
class Visitor:
    """Who asks for a page and in which language."""

    request: Request
    services: Services
    language: str
    brand: storefront.Brand
    customer: Customer | None = None
    email: str | None = None
    balance: Decimal | None = None
    timezone: str = "UTC"
    unread_news: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def _(self) -> i18n.Translate:
        return i18n.translator(self.language)

    def money(self, value: Decimal) -> str:
        currency = self.customer.currency if self.customer else self.services.settings.currency
        return i18n.money(value, currency, self.language)

    def when(self, moment: datetime) -> str:
        """A time in the customer's time zone (UTC for visitors)."""
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    def error(self, message: str) -> str:
        return i18n.error_text(self.language, message)

    @property
    def me(self) -> Customer:
        if self.customer is None:
            raise SignInFirst(self.request.url.path)
        return self.customer


async def visitor(request: Request) -> Visitor:
    """The request's visitor: signed in by the session cookie, or anonymous; and what the
    operator shows on every page (read on each request, so a change shows at once)."""
    services = get_services(request)
    token = request.cookies.get(SESSION_COOKIE)
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    async with services.db.session() as session:
        found = Visitor(
            request, services, i18n.DEFAULT, await storefront.brand(session, services.settings)
        )
        if token:
            try:
                found.customer = await customers.resolve_session(session, token)
            except CustomerError:
                found.customer = None
            if found.customer is not None:
                login = await customers.login_of(session, found.customer.user_id)
                user = await accounts.get_live_user(session, found.customer.user_id)
                chosen, found.email, found.balance = login.language, user.email, user.balance
                found.timezone = login.timezone
                found.unread_news = await news.unread_count(session, found.customer.user_id)
    found.language = i18n.pick_language(chosen, request.headers.get("accept-language"))
    return found


async def signed_in(request: Request) -> Visitor:
    found = await visitor(request)
    found.me  # noqa: B018 - raises SignInFirst for an anonymous visitor
    return found


def refusal(who: Visitor, exc: DomainError, fields: Collection[str]) -> dict[str, str]:
    """A command's refusal as a form shows it: its message in the page's language, next to
    the field it belongs to (`error_field`) when the form has that field, else above the
    form."""
    where = exc.field if exc.field is not None and exc.field in fields else ""
    return {"error": who.error(exc.message), "error_field": where}


def page(who: Visitor, name: str, http_status: int = 200, **values: Any) -> Response:
    request = who.request
    settings = who.services.settings
    context = {
        "_": who._,
        "lang": who.language,
        "who": who,
        "money": who.money,
        "when": who.when,
        "number": lambda v: i18n.number(v, who.language),
        "error_text": who.error,
        "csrf_field": CSRF_FIELD,
        "csrf": csrf_token(settings, csrf_seed(request)),
        "panel_name": who.brand.name,
        "has_logo": who.brand.logo,
        "path": here(who),
        **values,
    }
    html = templates.get_template(name).render(context)
    response = HTMLResponse(
        html, status_code=http_status, headers={"content-security-policy": WEB_CSP}
    )
    return finish(request, response, settings)


def here(who: Visitor) -> str:
    """Where the language switch comes back to: this page, or (after a form was sent) the
    page the form belongs to."""
    path = who.request.url.path
    if who.request.method == "GET":
        return path
    for section in ("/web/account", "/web/operator", "/web/tickets"):
        if path.startswith(section):
            return section
    return "/web/orders/new" if who.customer else "/web/"


def redirect(who: Visitor, to: str) -> Response:
    response = RedirectResponse(to, status_code=303)
    return finish(who.request, response, who.services.settings)


def services_of(request: Request) -> Services:
    return get_services(request)
