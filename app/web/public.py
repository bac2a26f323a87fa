"""The pages anyone can open: home with sign-up and sign-in, e-mail verification,
password reset, the services, the legal texts, the language switch and the logo (the
operator's, set at run time or by PANEL_LOGO). Signing up is the command /client/v1 runs
too (app/flows/commands/signup.py); the other steps are app/customers/signin.py's, as
/client/v1 calls them, in the request's transaction."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from app.catalog import service as catalog
from app.catalog.models import Service
from app.customers import service as customers
from app.customers import signin
from app.customers.errors import TooManyAttempts
from app.customers.models import LANGUAGES
from app.errors import DomainError
from app.flows.commands import signup
from app.http.context import ServicesDep
from app.http.paths import PathId
from app.http.tx import Reader, Tx
from app.legal import service as legal
from app.money import format_rate
from app.pages.csrf import set_cookie
from app.referrals import service as referrals
from app.referrals.models import TRACE_SIGNIN
from app.storefront import service as storefront
from app.web.forms import posted
from app.web.render import Visitor, page, redirect, visitor
from app.web.session import CONSENT_COOKIE, DEVICE_COOKIE, LANGUAGE_COOKIE, SESSION_COOKIE

router = APIRouter()
Who = Annotated[Visitor, Depends(visitor)]
# page → (title, the storefront's text, the legal document with versions)
LEGAL = {
    "terms": ("Terms of Service", "terms", "terms"),
    "privacy-policy": ("Privacy Policy", "privacy_policy", "privacy"),
    "terms-of-use": ("Terms of Use", "terms_of_use", "terms-of-use"),
}
# The logo is served by the panel itself; no script runs in an SVG opened on its own, and
# no browser guesses another type.
LOGO_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'none'; "
    "style-src 'unsafe-inline'; sandbox",
    "x-content-type-options": "nosniff",
}


def caller(request: Request) -> signin.Caller:
    return signin.Caller(
        ip=request.client.host if request.client else "unknown",
        user_agent=request.headers.get("user-agent"),
    )


def safe_next(target: str | None) -> str:
    """Only a path of the storefront itself (never another host)."""
    if target and target.startswith("/web/") and "//" not in target and "\\" not in target:
        return target
    return "/web/orders/new"


@router.get("/", name="home")
async def home(who: Who, ref: str = "", next: str = "") -> Response:
    return page(who, "home.html", ref=ref[:16], next=next[:200])


def device_of(who: Visitor) -> str:
    """The browser's device id: its cookie, or a new one."""
    given = who.request.cookies.get(DEVICE_COOKIE, "")
    return given if 16 <= len(given) <= 64 and given.isascii() else secrets.token_urlsafe(16)


def keep_device(who: Visitor, response: Response, device: str) -> Response:
    years = int(timedelta(days=730).total_seconds())
    set_cookie(response, who.services.settings, DEVICE_COOKIE, device, years)
    return response


@router.post("/signup")
async def sign_up(who: Who, tx: Tx, services: ServicesDep) -> Response:
    fields = await posted(who)
    device = device_of(who)
    try:
        user = await signup.sign_up(
            tx,
            services,
            email=fields.get("email", ""),
            password=fields.get("password", ""),
            referral_code=fields.get("ref") or None,
            language=who.language,
            accept_terms=fields.get("accept_terms") == "1",
            ip=caller(who.request).ip,
            device=device,
        )
    except DomainError as exc:
        return page(who, "home.html", 422, signup_error=who.error(exc.message), form=fields)
    return keep_device(who, page(who, "home.html", signed_up=user.email), device)


@router.post("/signin")
async def sign_in(who: Who, tx: Tx, services: ServicesDep) -> Response:
    fields = await posted(who)
    try:
        async with tx.begin_nested():
            opened = await signin.login(
                services,
                tx,
                caller(who.request),
                email=fields.get("email", ""),
                password=fields.get("password", ""),
                code=fields.get("code", ""),
            )
    except TooManyAttempts as exc:
        locked = page(who, "home.html", exc.http_status, signin_error=who.error(exc.message))
        locked.headers.update(exc.headers or {})
        return locked
    except DomainError as exc:
        return page(who, "home.html", 401, signin_error=who.error(exc.message), form=fields)
    device = device_of(who)
    await referrals.record_trace(
        tx, opened.row.user_id, kind=TRACE_SIGNIN, ip=caller(who.request).ip, device=device
    )
    response = redirect(who, safe_next(fields.get("next")))
    days = who.services.settings.client_session_days
    set_cookie(response, who.services.settings, SESSION_COOKIE, opened.token, days * 86400)
    return keep_device(who, response, device)


@router.post("/signout")
async def sign_out(who: Who, tx: Tx) -> Response:
    await posted(who)
    if who.customer is not None:
        await customers.revoke_session(tx, who.customer.user_id, who.customer.session_id)
    response = redirect(who, "/web/")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/verify")
async def verify_page(who: Who, token: str = "") -> Response:
    return page(who, "token.html", action="verify", token=token[:200])


@router.post("/verify")
async def verify(who: Who, tx: Tx, services: ServicesDep) -> Response:
    fields = await posted(who)
    try:
        async with tx.begin_nested():
            await signin.verify(services, tx, caller(who.request), fields.get("token", ""))
    except DomainError as exc:
        return page(who, "token.html", 400, action="verify", error=who.error(exc.message))
    return page(who, "token.html", action="verify", done=True)


@router.get("/forgot")
async def forgot_page(who: Who) -> Response:
    return page(who, "token.html", action="forgot")


@router.post("/forgot")
async def forgot(who: Who, tx: Tx, services: ServicesDep) -> Response:
    fields = await posted(who)
    try:
        async with tx.begin_nested():
            await signin.forgot(services, tx, caller(who.request), fields.get("email", ""))
    except DomainError as exc:
        return page(who, "token.html", 429, action="forgot", error=who.error(exc.message))
    return page(who, "token.html", action="forgot", done=True)


@router.get("/reset-password")
async def reset_page(who: Who, token: str = "") -> Response:
    return page(who, "token.html", action="reset-password", token=token[:200])


@router.post("/reset-password")
async def reset(who: Who, tx: Tx, services: ServicesDep) -> Response:
    fields = await posted(who)
    token, password = fields.get("token", ""), fields.get("password", "")
    try:
        async with tx.begin_nested():
            await signin.reset(services, tx, caller(who.request), token, password)
    except DomainError as exc:
        return page(
            who,
            "token.html",
            400,
            action="reset-password",
            token=token,
            error=who.error(exc.message),
        )
    return page(who, "token.html", action="reset-password", done=True)


def matches(service: Service, needle: str) -> bool:
    """A search finds a service by its id or by either of its names."""
    names = (service.name, service.name_ru or "")
    return needle == str(service.id) or any(needle in name.lower() for name in names)


@router.get("/services")
async def services_page(who: Who, db: Reader, q: str = "", category: str = "") -> Response:
    # Anonymous visitors see the base rates (no user has id 0).
    offered = await catalog.list_offered(db, who.customer.user_id if who.customer else 0)
    needle = q.strip().lower()[:100]
    shown = [
        o
        for o in offered
        if (not category or o.category == category) and (not needle or matches(o.service, needle))
    ]
    categories = list(dict.fromkeys(o.category for o in offered))
    grouped: dict[str, list[catalog.OfferedService]] = {}
    for o in shown:
        grouped.setdefault(o.category, []).append(o)
    return page(
        who,
        "services.html",
        grouped=grouped,
        categories=categories,
        q=q[:100],
        category=category,
        rate_text=format_rate,
    )


@router.get("/terms")
@router.get("/privacy-policy")
@router.get("/terms-of-use")
async def legal_page(who: Who, db: Reader) -> Response:
    """The version in force (with its publication date and the earlier versions), else the
    operator's text (set at run time, else its file), escaped, in paragraphs."""
    slug = who.request.url.path.rsplit("/", 1)[-1]
    title, kind, document = LEGAL[slug]
    shown = await legal.current(db, document, who.language)
    if shown is None:
        text = await storefront.legal_text(db, who.services.settings, kind)
        return page(who, "legal.html", title=title, text=text)
    earlier = [v for v in await legal.versions(db, document) if v.id != shown.id]
    return page(
        who, "legal.html", title=title, text=shown.text, version=shown, earlier=earlier, slug=slug
    )


@router.get("/terms/versions/{version_id}")
@router.get("/privacy-policy/versions/{version_id}")
@router.get("/terms-of-use/versions/{version_id}")
async def legal_version(who: Who, db: Reader, version_id: PathId) -> Response:
    """A version as it was published, at a stable address (in force or not)."""
    slug = who.request.url.path.split("/")[-3]
    title, _, document = LEGAL[slug]
    try:
        shown = await legal.version(db, document, version_id)
    except DomainError as exc:
        return page(who, "message.html", 404, message=who.error(exc.message))
    current = await legal.current(db, document, shown.language)
    return page(
        who,
        "legal.html",
        title=title,
        text=shown.text,
        version=shown,
        superseded=current is not None and current.id != shown.id,
        slug=slug,
    )


@router.post("/language")
async def switch_language(who: Who, tx: Tx) -> Response:
    fields = await posted(who)
    language = fields.get("language", "")
    if language not in LANGUAGES:
        language = who.language
    if who.customer is not None:
        await customers.update_profile(
            tx, who.customer.user_id, name=None, language=language, timezone=None
        )
    response = redirect(who, safe_next(fields.get("next")))
    year = int(timedelta(days=365).total_seconds())
    set_cookie(response, who.services.settings, LANGUAGE_COOKIE, language, year)
    return response


@router.post("/consent")
async def consent(who: Who) -> Response:
    """The visitor's answer to the cookie notice (analytics and chat), kept a year; the
    footer sends the other answer to withdraw or give it."""
    fields = await posted(who)
    choice = "yes" if fields.get("choice") == "yes" else "no"
    response = redirect(who, safe_next(fields.get("next")))
    year = int(timedelta(days=365).total_seconds())
    set_cookie(response, who.services.settings, CONSENT_COOKIE, choice, year)
    return response


@router.get("/logo")
async def logo(db: Reader, services: ServicesDep) -> Response:
    """The operator's logo: the one set at run time, else the PANEL_LOGO file."""
    found = await storefront.logo(db, services.settings)
    if found is None:
        return Response(status_code=404)
    if found.content is not None:
        return Response(found.content, media_type=found.content_type, headers=LOGO_HEADERS)
    return FileResponse(found.path or "", media_type=found.content_type, headers=LOGO_HEADERS)


# The links of the mails (PUBLIC_URL/verify, /reset-password) and the referral link
# (PUBLIC_URL/?ref=) lead to the storefront.
entry = APIRouter(include_in_schema=False)


@entry.get("/")
async def root(request: Request) -> Response:
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/web/{query}", status_code=303)


@entry.get("/verify")
@entry.get("/reset-password")
async def mailed_link(request: Request) -> Response:
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse(f"/web{request.url.path}{query}", status_code=303)
