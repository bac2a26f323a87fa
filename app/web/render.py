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
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service as accounts
from app.catalog.models import Service
from app.currencies import service as currencies
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
from app.web.assets import asset_url
from app.web.session import CONSENT_COOKIE, LANGUAGE_COOKIE, SESSION_COOKIE

HERE = Path(__file__).parent
templates = environment(HERE / "templates")
# A ledger entry's kind as the transactions page names it.
KIND_WORDS = {
    "deposit": "Deposit",
    "charge": "Charge",
    "refund": "Refund",
    "adjustment": "Adjustment",
    "forfeit": "Forfeit",
    "referral": "Referral reward",
}
CONVERSION_NOTE = (
    "Amounts marked ≈ are shown in %(shown)s at the panel's rate (%(one)s = %(unit)s); "
    "charges and the balance are kept in %(panel)s."
)


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
    # The currency the customer reads amounts in, when not the panel's, and its rate
    # (panel currency per unit, the operator's conversion rate).
    shown_currency: str | None = None
    shown_rate: Decimal | None = None
    unread_news: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def _(self) -> i18n.Translate:
        return i18n.translator(self.language)

    @property
    def currency(self) -> str:
        """The panel's currency, in which charges and the balance are kept."""
        return self.customer.currency if self.customer else self.services.settings.currency

    @property
    def entry_currency(self) -> str:
        """The currency the customer reads amounts and types deposits in."""
        return self.shown_currency or self.currency

    def money(self, value: Decimal) -> str:
        """An amount of the panel's currency as the customer reads it: in the locale's
        format, converted (and marked ≈) when the customer reads another currency."""
        if self.shown_currency and self.shown_rate:
            converted = i18n.convert(value, self.shown_rate)
            return "≈\u00a0" + i18n.money(converted, self.shown_currency, self.language)
        return i18n.money(value, self.currency, self.language)

    def money_in(self, value: Decimal, currency: str) -> str:
        """An amount of a given currency (an invoice's), in the locale's format."""
        return i18n.money(value, currency, self.language)

    def conversion_note(self) -> str | None:
        """What every page that shows converted amounts says about them."""
        if not (self.shown_currency and self.shown_rate):
            return None
        unit = i18n.money(
            i18n.convert(Decimal(1), self.shown_rate), self.shown_currency, self.language
        )
        return self._(
            CONVERSION_NOTE,
            shown=self.shown_currency,
            one=i18n.money(Decimal(1), self.currency, self.language),
            unit=unit,
            panel=self.currency,
        )

    def named(self, service: Service) -> str:
        """A service's name in the page's language (the English one where none is set)."""
        if self.language == "ru" and service.name_ru:
            return service.name_ru
        return service.name

    def described(self, service: Service) -> str:
        if self.language == "ru" and service.description_ru:
            return service.description_ru
        return service.description or ""

    def when(self, moment: datetime) -> str:
        """A time in the customer's time zone (UTC for visitors)."""
        try:
            zone = ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    def duration(self, seconds: int | None) -> str:
        """A service's average time in hours and minutes ("—" when not measured yet)."""
        if seconds is None:
            return "—"
        hours, minutes = divmod(max(1, round(seconds / 60)), 60)
        if hours and minutes:
            return self._("%(h)s h %(m)s min", h=hours, m=minutes)
        if hours:
            return self._("%(h)s h", h=hours)
        return self._("%(m)s min", m=minutes)

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
                await shown_in(session, found, login.display_currency)
                found.unread_news = await news.unread_count(session, found.customer.user_id)
    found.language = i18n.pick_language(chosen, request.headers.get("accept-language"))
    return found


async def shown_in(session: AsyncSession, found: Visitor, code: str | None) -> None:
    """Amounts in the customer's chosen currency, when the panel knows its rate (else, as
    with no choice, in the panel's)."""
    if not code or code == found.currency:
        return
    try:
        rate = await currencies.conversion_rate(session, found.services.settings, code)
    except currencies.NoConversionRate:
        return
    found.shown_currency, found.shown_rate = code, rate


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


# The pages whose forms sign in, set a password or two-factor codes, or pay: analytics
# and chat never load on them, whatever the visitor agreed to.
NO_ANALYTICS = frozenset(
    {"token.html", "account.html", "funds.html", "invoice.html", "funds_return.html"}
)


def analytics_of(who: Visitor, name: str) -> dict[str, Any]:
    """What a page shows of analytics: the cookie notice (the operator switched a service
    on, the visitor has not answered), the scripts (both said yes, and the page is no
    sign-in, password or payment page), and the footer's way to change the answer."""
    switched = who.brand.analytics
    if not switched.on:
        return {"analytics": None, "cookie_notice": False, "cookie_choice": None}
    answer = who.request.cookies.get(CONSENT_COOKIE)
    choice = answer if answer in ("yes", "no") else None
    money_or_secret = name in NO_ANALYTICS or (name == "home.html" and who.customer is None)
    loads = (
        choice == "yes"
        and not money_or_secret
        and not who.request.url.path.startswith("/web/operator")
    )
    return {
        "analytics": switched if loads else None,
        "cookie_notice": choice is None,
        "cookie_choice": choice,
    }


def page(who: Visitor, name: str, http_status: int = 200, **values: Any) -> Response:
    request = who.request
    settings = who.services.settings
    shown = analytics_of(who, name)
    context = {
        "_": who._,
        "lang": who.language,
        "who": who,
        "money": who.money,
        "money_in": who.money_in,
        "asset": asset_url,
        "duration": who.duration,
        "kind_label": lambda kind: who._(KIND_WORDS.get(kind, kind)),
        "when": who.when,
        "named": who.named,
        "described": who.described,
        "number": lambda v: i18n.number(v, who.language),
        "error_text": who.error,
        "csrf_field": CSRF_FIELD,
        "csrf": csrf_token(settings, csrf_seed(request)),
        "panel_name": who.brand.name,
        "has_logo": who.brand.logo,
        "path": here(who),
        **shown,
        **values,
    }
    html = templates.get_template(name).render(context)
    csp = shown["analytics"].csp(WEB_CSP) if shown["analytics"] else WEB_CSP
    response = HTMLResponse(html, status_code=http_status, headers={"content-security-policy": csp})
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
