"""The storefront's cookies and CSRF tokens.

The session cookie carries the same customer session token as /client/v1 (HttpOnly,
SameSite=Lax, Secure when PUBLIC_URL is https). Every form carries a CSRF token: the
HMAC of a random per-browser value kept in its own HttpOnly cookie, keyed by SECRET_KEY
(signed double submit). A page on another site can neither read the cookie nor compute
the HMAC, so a form it posts is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from fastapi import Request, Response

from app.settings import Settings

SESSION_COOKIE = "panel_session"
CSRF_COOKIE = "panel_csrf"
LANGUAGE_COOKIE = "panel_lang"
COOKIE_PATH = "/"
CSRF_FIELD = "csrf"


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
    response: Response, settings: Settings, name: str, value: str, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=COOKIE_PATH,
        httponly=True,
        secure=settings.https,
        samesite="lax",
    )


def finish(request: Request, response: Response, settings: Settings) -> Response:
    """Set the CSRF cookie when this request made a new seed."""
    seed = getattr(request.state, "new_csrf_seed", None)
    if seed:
        set_cookie(response, settings, CSRF_COOKIE, seed, None)
    return response
