"""Cookies and CSRF tokens of the server-rendered pages.

Every form carries a CSRF token: the HMAC of a random per-browser value kept in its own
HttpOnly cookie, keyed by SECRET_KEY (signed double submit), with a purpose so that one
front end's token is no token of another's. A page on another site can neither read the
cookie nor compute the HMAC, so a form it posts is refused. The token on each page is
masked with a fresh random pad, so that compressed pages (gzip) give BREACH nothing to
guess. Cookies are HttpOnly, Secure when PUBLIC_URL is https.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Literal

from fastapi import Request, Response

from app.settings import Settings

CSRF_COOKIE = "panel_csrf"
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


def _csrf_mac(settings: Settings, seed: str, purpose: str) -> bytes:
    key = settings.current_secret_key.encode()
    return hmac.new(key, f"{purpose}:{seed}".encode(), hashlib.sha256).digest()


def csrf_token(settings: Settings, seed: str, purpose: str = "csrf") -> str:
    """The form's token, masked anew for each response (a random pad, then the MAC XOR the
    pad): compressed pages never repeat the secret's bytes, so BREACH cannot guess it."""
    mac = _csrf_mac(settings, seed, purpose)
    pad = secrets.token_bytes(len(mac))
    return (pad + bytes(a ^ b for a, b in zip(pad, mac, strict=True))).hex()


def unmask(token: str) -> bytes | None:
    try:
        raw = bytes.fromhex(token)
    except ValueError:
        return None
    if len(raw) != 2 * hashlib.sha256().digest_size:
        return None
    pad, masked = raw[: len(raw) // 2], raw[len(raw) // 2 :]
    return bytes(a ^ b for a, b in zip(pad, masked, strict=True))


def check_csrf(
    settings: Settings, request: Request, posted: str | None, purpose: str = "csrf"
) -> None:
    seed = request.cookies.get(CSRF_COOKIE, "")
    given = unmask(posted or "")
    expected = _csrf_mac(settings, seed, purpose)
    if not seed or given is None or not hmac.compare_digest(expected, given):
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


def finish(request: Request, response: Response, settings: Settings) -> Response:
    """Set the CSRF cookie when this request made a new seed."""
    seed = getattr(request.state, "new_csrf_seed", None)
    if seed:
        set_cookie(response, settings, CSRF_COOKIE, seed, None)
    return response
