"""The API v2 *client*: how the panel talks to its upstream providers.

Every failure is classified so that callers can decide safely:
- ProviderNotSent: the request surely never reached the provider; safe to retry.
- ProviderUnknownOutcome: it may have been received; for `add` never resend blindly.
- ProviderTransient: the provider answered, but the problem is temporary.
- ProviderPermanent: the provider refused and will refuse again.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

MAX_IDS = 100
FORM = {"Content-Type": "application/x-www-form-urlencoded"}

CANONICAL_STATUSES = {
    "pending": "Pending",
    "in progress": "In progress",
    "inprogress": "In progress",
    "in_progress": "In progress",
    "processing": "Processing",
    "completed": "Completed",
    "complete": "Completed",
    "partial": "Partial",
    "canceled": "Canceled",
    "cancelled": "Canceled",
    "rejected": "Rejected",
}

# Errors a provider may stop giving on its own: retry later.
TRANSIENT_MARKERS = (
    "not enough funds",
    "insufficient",
    "too many requests",
    "rate limit",
    "try again",
    "maintenance",
    "temporarily",
)


class ProviderError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ProviderNotSent(ProviderError):
    """The request never left: connection refused, DNS failure, pool exhausted."""


class ProviderUnknownOutcome(ProviderError):
    """The request may have been processed, but no usable answer came back."""


class ProviderTransient(ProviderError):
    """The provider answered with a temporary problem."""


class ProviderPermanent(ProviderError):
    """The provider refused for good (unknown error strings included, see classify_error)."""


def classify_error(message: str) -> ProviderError:
    """An `{"error": …}` answer. Unknown strings count as permanent: for `add`, treating
    them as retryable could place the same order twice."""
    lowered = message.lower()
    if any(marker in lowered for marker in TRANSIENT_MARKERS):
        return ProviderTransient(message)
    return ProviderPermanent(message)


@dataclass(frozen=True)
class ProviderService:
    service: str
    name: str
    type: str
    category: str
    rate: Decimal
    min: int
    max: int
    refill: bool = False
    cancel: bool = False
    dripfeed: bool = False


@dataclass(frozen=True)
class ProviderOrderStatus:
    status: str
    charge: Decimal | None = None
    start_count: int | None = None
    remains: int | None = None
    currency: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ProviderBalance:
    balance: Decimal
    currency: str


def build_http_client(
    connect_timeout: float = 5.0, read_timeout: float = 30.0
) -> httpx.AsyncClient:
    """The one long-lived client for all providers: explicit timeouts and limits."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
        ),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
        headers={"User-Agent": "smm-panel"},
        follow_redirects=False,
    )


class Poster(Protocol):
    """What ProviderClient needs of HTTP: post a form, get the whole answer back."""

    async def post(
        self, url: str, *, content: str, headers: Mapping[str, str]
    ) -> httpx.Response: ...


class Lane:
    """One small connection pool used through its transport, with the timeouts and
    headers of `like`. For posting forms to providers at a high rate: the client layer
    (cookies, auth, redirects, hooks) does nothing for these calls and costs a good part
    of each, and a pool's bookkeeping on each request grows with its connections, so many
    small pools cost far less per call than one big one at equal concurrency. Errors are
    httpx's, as from a client, so they are classified alike."""

    def __init__(
        self, like: httpx.AsyncClient, connections: int, ssl_context: ssl.SSLContext
    ) -> None:
        # One TLS context shared by every lane: building one loads the CA bundle (tens of
        # milliseconds each).
        self._transport = httpx.AsyncHTTPTransport(
            verify=ssl_context,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
        self._timeout = like.timeout.as_dict()
        self._headers = like.headers

    async def post(self, url: str, *, content: str, headers: Mapping[str, str]) -> httpx.Response:
        request = httpx.Request(
            "POST",
            url,
            content=content,
            headers={**self._headers, **headers},
            extensions={"timeout": self._timeout},
        )
        response = await self._transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()


def to_decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def to_int(value: Any) -> int | None:
    number = to_decimal(value)
    if number is None:
        return None
    return int(number)


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def canonical_status(value: Any) -> str:
    text = str(value or "").strip()
    return CANONICAL_STATUSES.get(text.lower(), text)


def _order_status(data: Mapping[str, Any]) -> ProviderOrderStatus:
    known = {"status", "charge", "start_count", "remains", "currency"}
    return ProviderOrderStatus(
        status=canonical_status(data.get("status")),
        charge=to_decimal(data.get("charge")),
        start_count=to_int(data.get("start_count")),
        remains=to_int(data.get("remains")),
        currency=str(data["currency"]) if data.get("currency") else None,
        extra={k: v for k, v in data.items() if k not in known},
    )


def _error_of(value: Any) -> ProviderError | None:
    if isinstance(value, Mapping) and "error" in value:
        return classify_error(str(value["error"]))
    return None


class ProviderClient:
    def __init__(self, url: str, api_key: str, http: httpx.AsyncClient | Poster) -> None:
        self.url = url
        self._key = api_key
        self.http = http

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        return f"ProviderClient({self.url!r})"

    async def _call(self, action: str, fields: Mapping[str, Any], *, mutating: bool) -> Any:
        data = {"key": self._key, "action": action}
        data.update({k: str(v) for k, v in fields.items()})
        unknown = ProviderUnknownOutcome if mutating else ProviderTransient
        try:
            # The form encoded here, as httpx would, at a fraction of its cost per request.
            response = await self.http.post(self.url, content=urlencode(data), headers=FORM)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise ProviderNotSent(f"{action}: not sent ({type(exc).__name__})") from exc
        except httpx.TimeoutException as exc:
            raise unknown(f"{action}: no answer in time ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise unknown(f"{action}: connection failed ({type(exc).__name__})") from exc
        if response.status_code == 429:
            raise ProviderTransient(f"{action}: rate limited (HTTP 429)")
        if response.status_code >= 500:
            raise unknown(f"{action}: HTTP {response.status_code}")
        try:
            body = json.loads(response.content)
        except ValueError as exc:
            raise unknown(f"{action}: answer is not JSON (HTTP {response.status_code})") from exc
        if isinstance(body, Mapping) and "error" in body and len(body) <= 2:
            error = _error_of(body)
            assert error is not None
            raise error
        if response.status_code >= 400:
            raise ProviderTransient(f"{action}: HTTP {response.status_code}")
        return body

    def _shape(self, action: str, mutating: bool) -> ProviderError:
        message = f"{action}: unexpected answer"
        return ProviderUnknownOutcome(message) if mutating else ProviderTransient(message)

    async def services(self) -> list[ProviderService]:
        body = await self._call("services", {}, mutating=False)
        if not isinstance(body, list):
            raise self._shape("services", False)
        out: list[ProviderService] = []
        for item in body:
            if not isinstance(item, Mapping) or item.get("service") is None:
                continue
            rate = to_decimal(item.get("rate"))
            low, high = to_int(item.get("min")), to_int(item.get("max"))
            if rate is None or low is None or high is None:
                continue
            out.append(
                ProviderService(
                    service=str(item["service"]),
                    name=str(item.get("name") or ""),
                    type=str(item.get("type") or "Default"),
                    category=str(item.get("category") or ""),
                    rate=rate,
                    min=low,
                    max=high,
                    refill=to_bool(item.get("refill", False)),
                    cancel=to_bool(item.get("cancel", False)),
                    dripfeed=to_bool(item.get("dripfeed", False)),
                )
            )
        return out

    async def add(self, fields: Mapping[str, str | int]) -> str:
        body = await self._call("add", fields, mutating=True)
        order = body.get("order") if isinstance(body, Mapping) else None
        if order is None or str(order).strip() == "":
            raise self._shape("add", True)
        return str(order).strip()

    async def status(self, order_id: str) -> ProviderOrderStatus:
        body = await self._call("status", {"order": order_id}, mutating=False)
        if not isinstance(body, Mapping) or "status" not in body:
            raise self._shape("status", False)
        return _order_status(body)

    async def statuses(
        self, order_ids: Sequence[str]
    ) -> dict[str, ProviderOrderStatus | ProviderError]:
        result: dict[str, ProviderOrderStatus | ProviderError] = {}
        for start in range(0, len(order_ids), MAX_IDS):
            chunk = [str(i) for i in order_ids[start : start + MAX_IDS]]
            body = await self._call("status", {"orders": ",".join(chunk)}, mutating=False)
            if not isinstance(body, Mapping):
                raise self._shape("status", False)
            for order_id in chunk:
                item = body.get(order_id)
                error = _error_of(item)
                if error is not None:
                    result[order_id] = error
                elif isinstance(item, Mapping) and "status" in item:
                    result[order_id] = _order_status(item)
                else:
                    result[order_id] = ProviderTransient(f"status: no answer for {order_id}")
        return result

    async def refill(self, order_id: str) -> str:
        body = await self._call("refill", {"order": order_id}, mutating=True)
        refill = body.get("refill") if isinstance(body, Mapping) else None
        if refill is None or isinstance(refill, Mapping):
            raise _error_of(refill) or self._shape("refill", True)
        return str(refill)

    async def refill_status(self, refill_id: str) -> str:
        body = await self._call("refill_status", {"refill": refill_id}, mutating=False)
        if not isinstance(body, Mapping) or "status" not in body:
            raise self._shape("refill_status", False)
        return canonical_status(body["status"])

    async def refill_statuses(self, refill_ids: Sequence[str]) -> dict[str, str | ProviderError]:
        result: dict[str, str | ProviderError] = {}
        for start in range(0, len(refill_ids), MAX_IDS):
            chunk = [str(i) for i in refill_ids[start : start + MAX_IDS]]
            body = await self._call("refill_status", {"refills": ",".join(chunk)}, mutating=False)
            if not isinstance(body, list):
                raise self._shape("refill_status", False)
            for item in body:
                if not isinstance(item, Mapping) or item.get("refill") is None:
                    continue
                status = item.get("status")
                error = _error_of(status)
                result[str(item["refill"])] = error or canonical_status(status)
        return result

    async def cancel(self, order_ids: Sequence[str]) -> dict[str, bool | ProviderError]:
        result: dict[str, bool | ProviderError] = {}
        for start in range(0, len(order_ids), MAX_IDS):
            chunk = [str(i) for i in order_ids[start : start + MAX_IDS]]
            body = await self._call("cancel", {"orders": ",".join(chunk)}, mutating=True)
            if not isinstance(body, list):
                raise self._shape("cancel", True)
            for item in body:
                if not isinstance(item, Mapping) or item.get("order") is None:
                    continue
                answer = item.get("cancel")
                error = _error_of(answer)
                result[str(item["order"])] = error or to_bool(answer)
        return result

    async def balance(self) -> ProviderBalance:
        body = await self._call("balance", {}, mutating=False)
        amount = to_decimal(body.get("balance")) if isinstance(body, Mapping) else None
        if amount is None:
            raise self._shape("balance", False)
        return ProviderBalance(amount, str(body.get("currency") or "USD"))
