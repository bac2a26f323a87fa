"""Request ids, one structured log line per request, and HTTP metrics.

A pure ASGI middleware (no per-request objects beyond what it needs): it takes the
caller's `X-Request-ID` when it is a sane token or makes one, exposes it to every log
record of the request, and returns it in the response.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import REQUEST_ID
from app.metrics import HTTP_REQUESTS, HTTP_SECONDS, child

_SANE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
log = logging.getLogger("app.http")


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SANE_ID.match(text) else None
    return None


class RequestIds:
    """Ids for requests that bring none: 32 hex digits, a random prefix drawn once per
    process (and again in a forked child) and a counter. As unique as a random UUID where
    it matters (across processes and restarts) without a call for random bytes per
    request."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._counter = itertools.count()

    def next(self) -> str:
        if os.getpid() != self._pid:
            self._pid, self._prefix = os.getpid(), secrets.token_hex(10)
            self._counter = itertools.count()
        return f"{self._prefix}{next(self._counter) % 16**12:012x}"


_made = RequestIds()


def route_of(scope: Scope) -> str:
    """The route template (bounded label values), never the raw path."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


class RequestContext:
    def __init__(self, app: ASGIApp, *, log_requests: bool = True) -> None:
        self.app = app
        self.log_requests = log_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_id(scope) or _made.next()
        token = REQUEST_ID.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = route_of(scope)
            child(HTTP_REQUESTS, scope["method"], route, str(status)).inc()
            child(HTTP_SECONDS, route).observe(elapsed)
            if self.log_requests:
                log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            REQUEST_ID.reset(token)
