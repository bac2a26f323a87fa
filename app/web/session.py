"""The storefront's cookies (CSRF tokens and the cookie helpers are app/pages/csrf.py).

The session cookie carries the same customer session token as /client/v1 (HttpOnly,
SameSite=Lax, Secure when PUBLIC_URL is https).

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

from fastapi import Request

from app.settings import Settings

SESSION_COOKIE = "panel_session"
LANGUAGE_COOKIE = "panel_lang"
# The visitor's answer to the cookie notice (analytics and chat): "yes" or "no".
CONSENT_COOKIE = "panel_consent"
# A random id of the browser, set at sign-up and sign-in: the referral program's signal
# that two accounts share a browser.
DEVICE_COOKIE = "panel_device"
OPERATOR_COOKIE = "panel_operator"
OPERATOR_PATH = "/web/operator"
OPERATOR_HOURS = 8


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
