"""The API v2 *client*: how the panel talks to its upstream providers.

Every failure is classified so that callers can decide safely:
- ProviderNotSent: the request surely never reached the provider; safe to retry.
- ProviderUnknownOutcome: it may have been received; for `add` never resend blindly.
- ProviderTransient: the provider answered, but the problem is temporary.
- ProviderPermanent: the provider refused and will refuse again.

Tolerant reader, bounded numbers. Nothing a provider sends reaches the database unread:
every number is parsed and bounded here, and what cannot be read safely is either
"unknown" (the panel keeps what it had) or an *anomaly* named on the report, which the
status sync records on that order and skips without stopping the others.

Counts (`start_count`, `remains`, `posts`, a service's `min` and `max`):
- integers, numeric strings and JSON numbers are read alike: `157`, `"157"`, `"12.0"`,
  `1e3`; a fractional value is rounded down (`12.5` → 12), so a refund is never computed
  on more units than were reported;
- `null`, `""`, `"Unknown"` or any other text that is not a number: unknown (None); the
  order keeps its own value;
- beyond ±MAX_COUNT (10^12), `NaN`, `Infinity`: out of range. On a status report this is
  an anomaly (`out_of_range`); in a service list the service is skipped.
- Relative to the order (applied by `orders.service.apply_status` and its SQL twin): a
  negative `remains` is over-delivery and counts as 0 remains, a `remains` above the
  order's quantity is clamped to the quantity, a negative `start_count` is ignored.

Money (`charge`, `balance`, a service's `rate`): a decimal from a JSON number or a
string, 0 ≤ x < MAX_MONEY (10^12, what `Numeric(20, 8)` holds); text that is not a number
is unknown; a negative or larger amount is out of range (an anomaly on a status report,
a skipped service, an unexpected answer to `balance`).

Order statuses are matched case-insensitively, ignoring spaces, `_` and `-`:
- `Pending` → Pending; `In progress`, `In Progress`, `Inprogress`, `in_progress` → In
  progress; `Processing` → Processing; `Completed`, `Complete` → Completed; `Partial` →
  Partial; `Canceled`, `Cancelled`, `Refunded` → Canceled (the provider gave the money
  back: nothing was or will be delivered).
- Anything else is an anomaly (`unknown_status`), and the order does not move. That
  includes `Fail`, `Failed` and `Error` on purpose: panels use them both for orders they
  gave up on and for orders their operator may still resend and complete, so treating
  them as Canceled could refund an order that is then delivered. An operator decides
  (`POST /admin/v1/orders/{id}/status`), with the report shown on the order.

A `Partial` report whose `remains` cannot be read (missing, `null`, `""`, `"Unknown"`,
any text) is an anomaly (`unreadable_remains`): Partial refunds the remains, and without
them the order would be closed with a refund of 0 for good. The order stays as it was
until a report with readable remains comes.

Ids the provider gives (an order's in the answer to `add`, a refill's, a service's) are
short printable tokens, read by `read_upstream_id`: a string of 1 to 64 printable
characters once surrounding whitespace is stripped (no NUL, control, line-break, bidi or
other format character; not text reading as a negative integer), or a non-negative JSON
integer (a bool is not one). Anything else (`{"id": 5}`, `false`, `-1`, `5.5`, `[1]`, 65
characters, a bidi override) is not an id: for `add` and `refill` an unknown outcome for
that one order or refill, never stored as text and never a refusal; in a service list the
service is skipped. Other text kept from a provider (error messages, an unreadable status
or number shown to the operator, service names) passes through `printable`: characters
that are not printable are escaped (`\x00`, `\u202e`) and the text is bounded.

Bodies: HTML, an empty body or any other non-JSON with HTTP 200 is an unknown outcome
for a mutating call (`add`, `refill`, `cancel`) and transient for a read. In a
multi-status answer, an `{"error": …}` item is that order's error only; an item that is
missing or not an object is a transient "no answer" for that order. An `error` that is
`null` or empty is no error.

An answer to a mutating call that names an order (`order` present, not `null` or empty)
together with an error, or with an HTTP 4xx status (`{"order": 99}` with 400), is an
unknown outcome: the provider may have created the order, so it is neither a refusal
(which would refund it) nor a transient error (which would send it again blindly).
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from app import netguard

MAX_IDS = 100
TOTAL_TIMEOUT = 60.0  # seconds for a whole call (PROVIDER_TOTAL_TIMEOUT's default)
# Bounds of what is read from a provider (see the module docstring).
MAX_COUNT = 10**12
MAX_MONEY = Decimal(10**12)  # Numeric(20, 8) holds up to 12 integer digits
MAX_TEXT = 100  # an unreadable value is kept, this long at most, to show the operator
MAX_UPSTREAM_ID = 64  # what an order's provider_order_id and a refill's id hold
MAX_ERROR = 1000  # an error message a provider sent, as kept
NEGATIVE_INTEGER = re.compile(r"-\d+")
UNREADABLE_REMAINS = "unreadable_remains"
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

# Order statuses, keyed by their lowercase letters only (see `order_status`).
ORDER_STATUSES = {
    "pending": "Pending",
    "inprogress": "In progress",
    "processing": "Processing",
    "completed": "Completed",
    "complete": "Completed",
    "partial": "Partial",
    "canceled": "Canceled",
    "cancelled": "Canceled",
    "refunded": "Canceled",
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


def printable(value: Any, limit: int) -> str:
    """Text a provider sent, safe to store and to show: every character that is not
    printable (NUL, control, line break, bidi and other format characters) escaped as
    Python writes it (`\x00`, `\u202e`), then cut to `limit` characters."""
    text = value if isinstance(value, str) else str(value)
    if not text.isprintable():
        text = "".join(
            ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text
        )
    return text[:limit]


def shown(value: Any) -> str:
    """A value from a provider's JSON as JSON (ASCII only), bounded: for messages."""
    return json.dumps(value)[:MAX_TEXT]


def read_upstream_id(value: Any) -> str | None:
    """An id the provider gave (an order's, a refill's, a service's) as we keep it, or
    None when the value is not one (see the module docstring)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if not 0 <= value < 10**MAX_UPSTREAM_ID:
            return None
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
        if NEGATIVE_INTEGER.fullmatch(text):
            return None
    else:
        return None
    if not text or len(text) > MAX_UPSTREAM_ID or not text.isprintable():
        return None
    return text


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
class Anomaly:
    """Something in a status report that cannot be applied as it is."""

    kind: str  # out_of_range, unknown_status
    field: str
    value: str  # what the provider sent, at most MAX_TEXT characters

    def as_json(self) -> dict[str, str]:
        return {"kind": self.kind, "field": self.field, "value": self.value}


@dataclass(frozen=True)
class ProviderOrderStatus:
    """One order's status report: `status` is canonical when it is known (else what was
    sent), numbers are bounded, and `anomalies` says what could not be read safely."""

    status: str
    charge: Decimal | None = None
    start_count: int | None = None
    remains: int | None = None
    currency: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    anomalies: tuple[Anomaly, ...] = ()


@dataclass(frozen=True)
class Capabilities:
    """The optional extensions a provider speaks (SPEC §4); a standard panel answers
    `capabilities` with an error, which means none."""

    request_id: bool = False
    status_by_request_id: bool = False
    webhooks: bool = False
    version: str = ""


@dataclass(frozen=True)
class ProviderBalance:
    balance: Decimal
    currency: str


def build_http_client(
    connect_timeout: float = 5.0,
    read_timeout: float = 30.0,
    *,
    allow_private: bool = False,
    total_timeout: float = TOTAL_TIMEOUT,
) -> httpx.AsyncClient:
    """The one long-lived client for all providers: explicit timeouts and limits, and
    connections only to public addresses unless `allow_private` (PROVIDER_ALLOW_PRIVATE),
    to the very address checked (app/netguard.py): the provider key never reaches
    169.254.169.254 or the panel's own network. `total_timeout` (PROVIDER_TOTAL_TIMEOUT)
    bounds each whole call made through it (see ProviderClient)."""
    client = netguard.GuardedClient(
        netguard.AddressPolicy(allow_private=allow_private),
        timeout=httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
        ),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=100),
        headers={"User-Agent": "smm-panel"},
    )
    client.total_timeout = total_timeout
    return client


def total_timeout_of(http: object) -> float:
    """The whole-call deadline a client (or a Lane) carries; TOTAL_TIMEOUT otherwise."""
    found = getattr(http, "total_timeout", None)
    return float(found) if isinstance(found, int | float) and found > 0 else TOTAL_TIMEOUT


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
        # Guarded as `like` is (app/netguard.py): the same addresses only.
        self._transport = netguard.GuardedTransport(
            netguard.policy_of(like),
            verify=ssl_context,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )
        self._timeout = like.timeout.as_dict()
        self._headers = like.headers
        self.total_timeout = total_timeout_of(like)

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


class OutOfRange(ValueError):
    """A number a provider sent that no order, service or balance can hold."""


def _number(value: Any) -> Decimal | None:
    """A finite or infinite number, or None when the value is not a number at all."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None


def read_count(value: Any) -> int | None:
    """A count: None when unknown, OutOfRange beyond ±MAX_COUNT (or not finite)."""
    number = _number(value)
    if number is None:
        return None
    if not number.is_finite() or abs(number) > MAX_COUNT:
        raise OutOfRange(str(value)[:MAX_TEXT])
    return int(number.to_integral_value(rounding=ROUND_FLOOR))


def read_money(value: Any) -> Decimal | None:
    """An amount: None when unknown, OutOfRange when negative or ≥ MAX_MONEY."""
    number = _number(value)
    if number is None:
        return None
    if not number.is_finite() or not Decimal(0) <= number < MAX_MONEY:
        raise OutOfRange(str(value)[:MAX_TEXT])
    return number + 0  # -0 → 0


def to_decimal(value: Any) -> Decimal | None:
    """An amount, None when unknown or out of range."""
    try:
        return read_money(value)
    except OutOfRange:
        return None


def to_int(value: Any) -> int | None:
    """A count, None when unknown or out of range."""
    try:
        return read_count(value)
    except OutOfRange:
        return None


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def canonical_status(value: Any) -> str:
    text = str(value or "").strip()
    return CANONICAL_STATUSES.get(text.lower(), text)


def order_status(value: Any) -> str | None:
    """An order status in our spelling, or None when it is not one we can act on."""
    key = "".join(ch for ch in str(value or "").lower() if ch.isalpha())
    return ORDER_STATUSES.get(key)


def _order_status(data: Mapping[str, Any]) -> ProviderOrderStatus:
    known = {"status", "charge", "start_count", "remains", "currency"}
    anomalies: list[Anomaly] = []

    def count(name: str) -> int | None:
        try:
            return read_count(data.get(name))
        except OutOfRange as exc:
            anomalies.append(Anomaly("out_of_range", name, printable(exc, MAX_TEXT)))
            return None

    def money(name: str) -> Decimal | None:
        try:
            return read_money(data.get(name))
        except OutOfRange as exc:
            anomalies.append(Anomaly("out_of_range", name, printable(exc, MAX_TEXT)))
            return None

    sent = data.get("status")
    status = order_status(sent)
    if status is None:
        anomalies.append(Anomaly("unknown_status", "status", printable(sent, MAX_TEXT)))
    charge, start_count, remains = money("charge"), count("start_count"), count("remains")
    if status == "Partial" and remains is None and not any(a.field == "remains" for a in anomalies):
        anomalies.append(Anomaly(UNREADABLE_REMAINS, "remains", _as_sent(data, "remains")))
    if "posts" in data:
        count("posts")
    currency = data.get("currency")
    return ProviderOrderStatus(
        status=status or printable(str(sent or "").strip(), MAX_TEXT),
        charge=charge,
        start_count=start_count,
        remains=remains,
        currency=printable(currency, 3) if currency else None,
        extra={k: v for k, v in data.items() if k not in known},
        anomalies=tuple(anomalies),
    )


def _as_sent(data: Mapping[str, Any], name: str) -> str:
    """A field as the provider sent it, for the operator: `(missing)` when absent."""
    if name not in data:
        return "(missing)"
    value = data[name]
    return "null" if value is None else printable(value, MAX_TEXT)


def read_order_status(data: Mapping[str, Any]) -> ProviderOrderStatus:
    """A status report from any source (a `status` answer, a webhook event), read by the
    same tolerant rules."""
    return _order_status(data)


def _error_text(value: Any) -> str | None:
    """The error an answer (or an item of one) carries; None when it carries none (an
    `error` that is null or empty is none)."""
    if not isinstance(value, Mapping) or value.get("error") is None:
        return None
    text = printable(value["error"], MAX_ERROR).strip()
    return text or None


def _error_of(value: Any) -> ProviderError | None:
    text = _error_text(value)
    return classify_error(text) if text is not None else None


def _names_order(body: Any) -> bool:
    return isinstance(body, Mapping) and body.get("order") not in (None, "")


class ProviderClient:
    """One provider's API v2. Every call has a total deadline (`total_timeout`, from the
    HTTP client: PROVIDER_TOTAL_TIMEOUT): connecting, sending and reading the whole
    answer. httpx's timeouts bound each read, so an answer that dribbles one byte every
    few seconds never trips them; the deadline does, and the call's outcome is then
    unknown (a mutating call) or transient (a read), as after a read timeout."""

    def __init__(
        self,
        url: str,
        api_key: str,
        http: httpx.AsyncClient | Poster,
        *,
        total_timeout: float | None = None,
    ) -> None:
        self.url = url
        self._key = api_key
        self.http = http
        self.total_timeout = total_timeout or total_timeout_of(http)

    def __repr__(self) -> str:  # the key stays out of logs and tracebacks
        return f"ProviderClient({self.url!r})"

    async def _call(self, action: str, fields: Mapping[str, Any], *, mutating: bool) -> Any:
        data = {"key": self._key, "action": action}
        data.update({k: str(v) for k, v in fields.items()})
        unknown = ProviderUnknownOutcome if mutating else ProviderTransient
        try:
            # The form encoded here, as httpx would, at a fraction of its cost per request.
            async with asyncio.timeout(self.total_timeout):
                response = await self.http.post(self.url, content=urlencode(data), headers=FORM)
        except TimeoutError as exc:  # the total deadline (httpx's own errors are not these)
            raise unknown(
                f"{action}: no whole answer in {self.total_timeout:g} s (total deadline)"
            ) from exc
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
        if mutating and _names_order(body):
            self._order_with_error(action, body, response.status_code)
        error = _error_of(body)
        if error is not None and len(body) <= 2:
            raise error
        if response.status_code >= 400:
            raise ProviderTransient(f"{action}: HTTP {response.status_code}")
        return body

    @staticmethod
    def _order_with_error(action: str, body: Mapping[str, Any], status_code: int) -> None:
        """An answer naming an order may mean the order was created, whatever else it
        says: with an error or an HTTP 4xx, its outcome is unknown."""
        error = _error_text(body)
        if error is None and status_code < 400:
            return
        why = f"with the error {error[:MAX_TEXT]!r}" if error else f"with HTTP {status_code}"
        raise ProviderUnknownOutcome(f"{action}: answer names order {shown(body['order'])} {why}")

    def _shape(self, action: str, mutating: bool) -> ProviderError:
        message = f"{action}: unexpected answer"
        return ProviderUnknownOutcome(message) if mutating else ProviderTransient(message)

    async def services(self) -> list[ProviderService]:
        body = await self._call("services", {}, mutating=False)
        if not isinstance(body, list):
            raise self._shape("services", False)
        out: list[ProviderService] = []
        for item in body:
            if not isinstance(item, Mapping):
                continue
            service = read_upstream_id(item.get("service"))
            if service is None:
                continue
            rate = to_decimal(item.get("rate"))
            low, high = to_int(item.get("min")), to_int(item.get("max"))
            if rate is None or low is None or high is None:
                continue
            out.append(
                ProviderService(
                    service=service,
                    name=printable(item.get("name") or "", 300),
                    type=printable(item.get("type") or "Default", 40),
                    category=printable(item.get("category") or "", 200),
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
        """The provider's id of the order it created (a short printable token)."""
        body = await self._call("add", fields, mutating=True)
        if not isinstance(body, Mapping) or "order" not in body:
            raise self._shape("add", True)
        order = read_upstream_id(body["order"])
        if order is None:
            raise ProviderUnknownOutcome(f"add: unreadable order id {shown(body['order'])}")
        return order

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
        token = read_upstream_id(refill)
        if token is None:
            raise ProviderUnknownOutcome(f"refill: unreadable refill id {shown(refill)}")
        return token

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

    async def capabilities(self) -> Capabilities:
        """What the provider speaks beyond the standard protocol: none when it answers
        anything but a capabilities object (an error, another shape)."""
        try:
            body = await self._call("capabilities", {}, mutating=False)
        except (ProviderPermanent, ProviderTransient):
            return Capabilities()
        if not isinstance(body, Mapping):
            return Capabilities()
        return Capabilities(
            request_id=body.get("request_id") is True,
            status_by_request_id=body.get("status_by_request_id") is True,
            webhooks=body.get("webhooks") is True,
            version=printable(body.get("version") or "", MAX_TEXT),
        )

    async def set_webhook(self, url: str) -> str:
        """Register our status webhook with the provider; the signing secret it answers."""
        body = await self._call("webhook", {"url": url}, mutating=True)
        secret = body.get("secret") if isinstance(body, Mapping) else None
        if not isinstance(secret, str) or not secret:
            raise self._shape("webhook", True)
        return secret

    async def balance(self) -> ProviderBalance:
        body = await self._call("balance", {}, mutating=False)
        amount = to_decimal(body.get("balance")) if isinstance(body, Mapping) else None
        if amount is None:
            raise self._shape("balance", False)
        return ProviderBalance(amount, str(body.get("currency") or "USD"))
