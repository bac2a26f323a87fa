"""The storefront's cookies and CSRF tokens.

The session cookie carries the same customer session token as /client/v1 (HttpOnly,
SameSite=Lax, Secure when PUBLIC_URL is https). Every form carries a CSRF token: the
HMAC of a random per-browser value kept in its own HttpOnly cookie, keyed by SECRET_KEY
(signed double submit). A page on another site can neither read the cookie nor compute
the HMAC, so a form it posts is refused.

The operator's page has a cookie of its own, given for the admin token (compared in
constant time): `<expiry>.<nonce>.<HMAC>`, keyed by SECRET_KEY over the expiry, the nonce
and a digest of ADMIN_TOKEN, so it never carries the token, expires after OPERATOR_HOURS
and stops working when the token changes. HttpOnly, SameSite=Strict, sent only to
/web/operator.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Literal

from fastapi import Request, Response

from app.settings import Settings

SESSION_COOKIE = "panel_session"
CSRF_COOKIE = "panel_csrf"
LANGUAGE_COOKIE = "panel_lang"
COOKIE_PATH = "/"
CSRF_FIELD = "csrf"
OPERATOR_COOKIE = "panel_operator"
OPERATOR_PATH = "/web/operator"
OPERATOR_HOURS = 8


class CsrfRefused(Exception):
    """A form posted without its valid CSRF token."""


def csrf_seed(request: Request) -> str:
    """This browser's CSRF seed: the cookie's, or a new one set on the response."""
    seed = request.cookies.get(CSRF_COOKIE, "")
    if not (16 <= len(seed) <= 100):
        seed = getattr(request.state, "new_csrf_seed", None) or secrets.token_urlsafe(24)
        request.state.new_csrf_seed = seed
    return seed


def csrf_token(settings: Settings, seed: str) -> str:
    key = settings.current_secret_key.encode()
    return hmac.new(key, f"csrf:{seed}".encode(), hashlib.sha256).hexdigest()


def check_csrf(settings: Settings, request: Request, posted: str | None) -> None:
    seed = request.cookies.get(CSRF_COOKIE, "")
    if not seed or not posted or not hmac.compare_digest(csrf_token(settings, seed), posted):
        raise CsrfRefused()


def set_cookie(
    response: Response,
    settings: Settings,
    name: str,
    value: str,
    max_age: int | None,
    *,
    path: str = COOKIE_PATH,
    samesite: Literal["lax", "strict"] = "lax",
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        secure=settings.https,
        samesite=samesite,
    )


def admin_token_matches(settings: Settings, given: str) -> bool:
    """The admin token, compared in constant time (no token configured: nothing matches)."""
    expected = settings.admin_token
    return bool(expected) and hmac.compare_digest(given.encode(), (expected or "").encode())


def _operator_mac(settings: Settings, expires: str, nonce: str) -> str:
    token = hashlib.sha256((settings.admin_token or "").encode()).hexdigest()
    key = settings.current_secret_key.encode()
    message = f"operator:{expires}:{nonce}:{token}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def operator_cookie(settings: Settings) -> str:
    expires = str(int(time.time()) + OPERATOR_HOURS * 3600)
    nonce = secrets.token_urlsafe(12)
    return f"{expires}.{nonce}.{_operator_mac(settings, expires, nonce)}"


def is_operator(settings: Settings, request: Request) -> bool:
    """Whether the request carries a valid, unexpired operator cookie."""
    value = request.cookies.get(OPERATOR_COOKIE, "")
    expires, _, rest = value.partition(".")
    nonce, _, mac = rest.partition(".")
    if not settings.admin_token or not expires.isdigit() or len(value) > 200:
        return False
    if int(expires) < time.time():
        return False
    return hmac.compare_digest(_operator_mac(settings, expires, nonce), mac)


def finish(request: Request, response: Response, settings: Settings) -> Response:
    """Set the CSRF cookie when this request made a new seed."""
    seed = getattr(request.state, "new_csrf_seed", None)
    if seed:
        set_cookie(response, settings, CSRF_COOKIE, seed, None)
    return response
