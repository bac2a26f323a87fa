"""Abuse limits and response hardening for the public API.

Rate limits are fixed one-minute windows counted in Redis, per client IP and per API key
(by the key's hash: the key itself never reaches Redis or the logs), under the panel's
prefix: panels sharing a Redis count their callers apart. Redis being down must
not take the API down with it, so limits then fail open.

The counts of the calls that arrive together go to Redis in one round trip (`Counts`): a
call counted while a round trip is in flight waits for the next one, which adds all the
calls gathered meanwhile (INCRBY their number, each call getting its own place in the
count). The limits cost one round trip per batch, not one per call, under load.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import weakref
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.jobs import JobQueue

log = logging.getLogger(__name__)

WINDOW_SECONDS = 60


class RateLimited(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__("rate limited")
        self.retry_after = retry_after


class Counts:
    """The rate counters of one Redis, counted in batches: every call counted while a round
    trip is in flight is sent with the next one (see the module's docstring)."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis
        self.pending: dict[str, list[asyncio.Future[int]]] = {}
        self.sender: asyncio.Task[None] | None = None

    async def add(self, names: list[str]) -> list[int]:
        """Count one call on each counter of `names`: each counter's value with this call."""
        loop = asyncio.get_running_loop()
        if self.sender is not None and self.sender.get_loop() is not loop:
            # A sender of another event loop (one closed under it) never sends again.
            self.pending, self.sender = {}, None
        counted = []
        for name in names:
            future: asyncio.Future[int] = loop.create_future()
            self.pending.setdefault(name, []).append(future)
            counted.append(future)
        if self.sender is None:
            self.sender = asyncio.create_task(self._send())
        return [await asyncio.shield(future) for future in counted]

    async def _send(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, {}
                try:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for name, calls in batch.items():
                            pipe.incrby(name, len(calls))
                            pipe.expire(name, WINDOW_SECONDS * 2)
                        results = await pipe.execute()
                except Exception as exc:
                    for calls in batch.values():
                        _settle(calls, error=exc)
                    continue
                for calls, total in zip(batch.values(), results[::2], strict=True):
                    _settle(calls, first=int(total) - len(calls) + 1)
        finally:
            self.sender = None
            for calls in self.pending.values():  # only when cancelled
                _settle(calls, error=ConnectionError("rate counter stopped"))
            self.pending = {}


def _settle(
    calls: list[asyncio.Future[int]], *, first: int = 0, error: Exception | None = None
) -> None:
    for place, call in enumerate(calls):
        if call.done():
            continue
        if error is not None:
            call.set_exception(error)
            call.exception()  # retrieved: a caller gone away must not warn
        else:
            call.set_result(first + place)


_COUNTS: weakref.WeakKeyDictionary[Any, Counts] = weakref.WeakKeyDictionary()


def counts_of(redis: Any) -> Counts:
    """The batched counters of a Redis client (one per client, for its lifetime)."""
    found = _COUNTS.get(redis)
    if found is None:
        found = _COUNTS[redis] = Counts(redis)
    return found


async def check_rate(
    jobs: JobQueue, *, ip: str, key: str | None, per_ip: int, per_key: int
) -> None:
    """Count this call; raise RateLimited when a limit (0 = off) is exceeded."""
    redis = jobs.redis
    if redis is None or (per_ip <= 0 and per_key <= 0):
        return
    window = int(time.time() // WINDOW_SECONDS)
    counters: list[tuple[str, int]] = []
    if per_ip > 0:
        counters.append((jobs.key(f"rl:ip:{ip}:{window}"), per_ip))
    if per_key > 0 and key:
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        counters.append((jobs.key(f"rl:key:{digest}:{window}"), per_key))
    try:
        results = await counts_of(redis).add([name for name, _ in counters])
    except Exception:
        log.warning("rate limiter unavailable; not limiting")
        return
    for (_, limit), count in zip(counters, results, strict=True):
        if count > limit:
            raise RateLimited(WINDOW_SECONDS - int(time.time()) % WINDOW_SECONDS)


SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]
# The interactive docs load their scripts and styles from the panel itself (no CDN), with
# inline bootstrapping: their policy allows exactly that and no other host.
DOCS_PATHS = ("/docs", "/redoc")
DOCS_CSP = (
    b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'"
)


HSTS = (b"strict-transport-security", b"max-age=31536000; includeSubDomains")


def secure_cookie(value: bytes) -> bytes:
    """A Set-Cookie value with the Secure attribute (added once)."""
    attributes = [part.strip().lower() for part in value.split(b";")[1:]]
    return value if b"secure" in attributes else value + b"; Secure"


class SecurityHeaders:
    """Adds hardening headers to every HTTP response (pure ASGI: no body buffering).

    When the panel is served over HTTPS (PUBLIC_URL is https://), responses also carry HSTS
    and every cookie is marked Secure, whatever set it."""

    def __init__(self, app: ASGIApp, *, https: bool = False) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = str(scope.get("path", "")).startswith(DOCS_PATHS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in SECURITY_HEADERS:
                    if name not in present:
                        csp = docs and name == b"content-security-policy"
                        headers.append((name, DOCS_CSP if csp else value))
                if self.https:
                    if HSTS[0] not in present:
                        headers.append(HSTS)
                    headers = [
                        (name, secure_cookie(value) if name.lower() == b"set-cookie" else value)
                        for name, value in headers
                    ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodySizeLimit:
    """Refuses request bodies above a limit on every route with 413
    `{"error": "Request too large"}`, by Content-Length before the app runs, or while the
    body streams in (chunked, no Content-Length): at the first byte over the limit the 413
    is sent, the app reads a client disconnect from then on, and whatever it answers to
    that is dropped. No handler, whatever it does with a failing read, can turn the
    refusal into another answer."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _too_large(send)
                return
        received = 0
        started = refused = answered = False

        async def limited_receive() -> Message:
            nonlocal received, refused, answered
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            received += len(message.get("body", b""))
            if received <= self.max_bytes:
                return message
            refused = True
            if not started:  # (an app already answering keeps its answer)
                await _too_large(send)
                answered = True
            return {"type": "http.disconnect"}

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the 413 was the answer
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not answered:
                raise
            # The app failed on the disconnect it was shown; the client has its 413.
            log.debug("request body over the limit: the app stopped reading", exc_info=True)


async def _too_large(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"error": "Request too large"}'})
