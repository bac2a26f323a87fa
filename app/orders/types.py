"""Service types: how `add` fields are validated, how quantity and charge are derived,
and which fields are relayed upstream. One handler per type name shown by `services`.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

from app.catalog.models import Service
from app.catalog.patterns import link_matches
from app.errors import (
    DomainError,
    IncorrectLink,
    InvalidField,
    QuantityTooLarge,
    QuantityTooSmall,
)
from app.money import charge_for

MAX_LINK_LENGTH = 2000
MAX_INT_DIGITS = 18


@dataclass
class OrderRequest:
    """A validated `add`, ready to be stored."""

    link: str
    link_normalized: str
    quantity: int  # units charged for (drip-feed: runs × quantity per run)
    params: dict[str, Any] = field(default_factory=dict)
    runs: int | None = None
    interval_minutes: int | None = None


class ServiceType(Protocol):
    @property
    def name(self) -> str: ...

    def parse(self, service: Service, fields: Mapping[str, str]) -> OrderRequest: ...

    def charge(self, rate: Decimal, request: OrderRequest) -> Decimal: ...

    def upstream_fields(self, order_params: Mapping[str, Any]) -> dict[str, str]: ...


def normalize_link(link: str) -> str:
    """The identity of a link for the duplicate rule: scheme, `www.`, case of the host,
    trailing slashes and fragments do not make two links different."""
    parts = urlsplit(link.strip())
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    port = f":{parts.port}" if parts.port else ""
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{port}{path}{query}"


# Unicode categories no link may carry: controls (`\x01`) and format characters, among
# them the bidirectional overrides (`\u202e`) that make a link read as another one.
REFUSED_LINK_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


def _link_char(char: str) -> bool:
    return not char.isspace() and unicodedata.category(char) not in REFUSED_LINK_CATEGORIES


def parse_link(service: Service, value: str | None) -> tuple[str, str]:
    link = (value or "").strip()
    if not link or len(link) > MAX_LINK_LENGTH or not all(_link_char(c) for c in link):
        raise IncorrectLink()
    try:
        parts = urlsplit(link)
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError as exc:
        raise IncorrectLink() from exc
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise IncorrectLink()
    if service.link_pattern and not link_matches(service.link_pattern, link):
        raise IncorrectLink()
    return link, normalize_link(link)


def parse_int(value: str | None, error: DomainError) -> int:
    text = (value or "").strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits or not digits.isascii() or not digits.isdigit() or len(digits) > MAX_INT_DIGITS:
        raise error
    return int(text)


def parse_quantity(service: Service, value: str | None) -> int:
    quantity = parse_int(value, InvalidField("quantity"))
    check_quantity(service, quantity)
    return quantity


def check_quantity(service: Service, quantity: int) -> None:
    if quantity < service.min_quantity:
        raise QuantityTooSmall(service.min_quantity)
    if quantity > service.max_quantity:
        raise QuantityTooLarge(service.max_quantity)
    if service.step > 1 and quantity % service.step:
        raise InvalidField("quantity", f"Quantity must be a multiple of {service.step}")


def parse_dripfeed(service: Service, fields: Mapping[str, str]) -> tuple[int | None, int | None]:
    """`runs` and `interval` (minutes); both or neither, only where drip-feed is allowed."""
    runs_raw, interval_raw = fields.get("runs", "").strip(), fields.get("interval", "").strip()
    if not runs_raw and not interval_raw:
        return None, None
    if not service.dripfeed:
        raise InvalidField("runs", "Drip-feed is disabled for this service")
    runs = parse_int(runs_raw, InvalidField("runs"))
    interval = parse_int(interval_raw, InvalidField("interval"))
    if not 1 <= runs <= 1000:
        raise InvalidField("runs")
    if not 1 <= interval <= 60 * 24 * 30:
        raise InvalidField("interval")
    return runs, interval


def split_lines(value: str | None) -> list[str]:
    """One item per line (`\n` or `\r\n`); blank lines do not count."""
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


def split_list(value: str | None) -> list[str]:
    """Items separated by new lines or commas."""
    return [item.strip() for item in (value or "").replace(",", "\n").splitlines() if item.strip()]


MAX_TEXT_FIELD = 100_000


def _text(name: str, value: str | None, *, max_length: int = 500) -> str:
    text = (value or "").strip()
    if not text or len(text) > max_length:
        raise InvalidField(name)
    return text


def _word(name: str, value: str | None, strip: str = "") -> str:
    """A username, hashtag…: one token without spaces (a leading @ or # is fine)."""
    text = (value or "").strip()
    if not text or len(text) > 200 or any(c.isspace() for c in text):
        raise InvalidField(name)
    return text if not strip else strip + text.lstrip(strip)


def _positive(name: str, value: str | None, maximum: int = 10**9) -> int:
    number = parse_int(value, InvalidField(name))
    if not 1 <= number <= maximum:
        raise InvalidField(name)
    return number


def _url(name: str, value: str | None) -> str:
    text = (value or "").strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or " " in text:
        raise InvalidField(name)
    return text


FieldParser = Callable[[str, str | None], Any]

LINES = "lines"  # quantity = number of non-empty lines of a field
FIELD = "field"  # quantity = the `quantity` field
PACKAGE = "package"  # fixed bundle: charge = rate


@dataclass(frozen=True)
class TypeSpec:
    """A service type described by its fields: a generic handler serves all of them."""

    name: str
    quantity: str = FIELD
    lines_field: str | None = None  # for LINES
    required: tuple[tuple[str, FieldParser], ...] = ()
    optional: tuple[tuple[str, FieldParser], ...] = ()
    dripfeed: bool = False
    link: bool = True

    def parse(self, service: Service, fields: Mapping[str, str]) -> OrderRequest:
        link, normalized = parse_link(service, fields.get("link")) if self.link else ("", "")
        params: dict[str, Any] = {}
        if self.lines_field is not None:
            lines = split_lines(fields.get(self.lines_field))
            if not lines or sum(len(line) for line in lines) > MAX_TEXT_FIELD:
                raise InvalidField(self.lines_field)
            params[self.lines_field] = "\n".join(lines)
        for name, parse in self.required:
            params[name] = parse(name, fields.get(name))
        for name, parse in self.optional:
            if (fields.get(name) or "").strip():
                params[name] = parse(name, fields.get(name))
        runs = interval = None
        if self.quantity == PACKAGE:
            quantity = 1
        elif self.quantity == LINES:
            quantity = len(params[self.lines_field or ""].split("\n"))
            check_quantity(service, quantity)
        else:
            quantity = parse_quantity(service, fields.get("quantity"))
            params["quantity"] = quantity
            if self.dripfeed:
                runs, interval = parse_dripfeed(service, fields)
                if runs is not None:
                    params.update(runs=runs, interval=interval)
        return OrderRequest(
            link=link,
            link_normalized=normalized,
            quantity=quantity * (runs or 1),
            params=params,
            runs=runs,
            interval_minutes=interval,
        )

    def charge(self, rate: Decimal, request: OrderRequest) -> Decimal:
        if self.quantity == PACKAGE:
            return rate
        return charge_for(rate, request.quantity)

    def upstream_fields(self, order_params: Mapping[str, Any]) -> dict[str, str]:
        return {k: str(v) for k, v in order_params.items()}


def _words(name: str, value: str | None) -> str:
    items = split_list(value)
    if not items or any(len(i) > 200 or " " in i for i in items):
        raise InvalidField(name)
    return "\n".join(items)


def _lines(name: str, value: str | None) -> str:
    items = split_lines(value)
    if not items or sum(len(i) for i in items) > MAX_TEXT_FIELD:
        raise InvalidField(name)
    return "\n".join(items)


def _short_text(name: str, value: str | None) -> str:
    return _text(name, value, max_length=500)


SERVICE_TYPES: dict[str, ServiceType] = {}


def register(handler: ServiceType) -> None:
    SERVICE_TYPES[handler.name] = handler


for _spec in (
    TypeSpec("Default", dripfeed=True),
    TypeSpec("Package", quantity=PACKAGE),
    TypeSpec("Custom Comments", quantity=LINES, lines_field="comments"),
    TypeSpec("Custom Comments Package", quantity=PACKAGE, required=(("comments", _lines),)),
    TypeSpec("Mentions with Hashtags", required=(("usernames", _words), ("hashtags", _words))),
    TypeSpec("Mentions Custom List", quantity=LINES, lines_field="usernames"),
    TypeSpec("Mentions Hashtag", required=(("hashtag", _word),)),
    TypeSpec("Mentions User Followers", required=(("username", _word),)),
    TypeSpec("Mentions Media Likers", required=(("media", _url),)),
    TypeSpec("Comment Likes", required=(("username", _word),)),
    TypeSpec("Poll", required=(("answer_number", _positive),)),
    TypeSpec("Invites from Groups", required=(("groups", _lines),)),
    TypeSpec(
        "Web Traffic",
        dripfeed=True,
        optional=(
            ("country", _short_text),
            ("device", _short_text),
            ("type_of_traffic", _short_text),
            ("google_keyword", _short_text),
            ("referring_url", _url),
        ),
    ),
):
    register(_spec)


SUBSCRIPTION_DELAYS = (
    0,
    5,
    10,
    15,
    30,
    60,
    90,
    120,
    150,
    180,
    210,
    240,
    270,
    300,
    360,
    420,
    480,
    540,
    600,
)


class SubscriptionsType:
    """Automatic delivery to a user's future posts, `min`–`max` units per post.

    Charged up front for the most it can cost: `max` per post for `posts` (+ `old_posts`).
    The provider reports what was not used as `remains` when the subscription ends
    (Completed early, Partial on expiry), and that share is refunded like any Partial.
    So `posts` is required here: an open-ended subscription could not be reserved.
    """

    name = "Subscriptions"

    def parse(self, service: Service, fields: Mapping[str, str]) -> OrderRequest:
        username = _word("username", fields.get("username"))
        low = parse_int(fields.get("min"), InvalidField("min"))
        high = parse_int(fields.get("max"), InvalidField("max"))
        check_quantity(service, low)
        check_quantity(service, high)
        if low > high:
            raise InvalidField("min")
        posts = _positive("posts", fields.get("posts"), maximum=10_000)
        old_posts = 0
        if (fields.get("old_posts") or "").strip():
            old_posts = parse_int(fields.get("old_posts"), InvalidField("old_posts"))
            if not 0 <= old_posts <= 1000:
                raise InvalidField("old_posts")
        params: dict[str, Any] = {"username": username, "min": low, "max": high, "posts": posts}
        if old_posts:
            params["old_posts"] = old_posts
        if (fields.get("delay") or "").strip():
            delay = parse_int(fields.get("delay"), InvalidField("delay"))
            if delay not in SUBSCRIPTION_DELAYS:
                raise InvalidField("delay")
            params["delay"] = delay
        if (fields.get("expiry") or "").strip():
            params["expiry"] = _expiry(fields["expiry"])
        return OrderRequest(
            link="",
            link_normalized="username:" + username.lstrip("@").lower(),
            quantity=high * (posts + old_posts),
            params=params,
        )

    def charge(self, rate: Decimal, request: OrderRequest) -> Decimal:
        return charge_for(rate, request.quantity)

    def upstream_fields(self, order_params: Mapping[str, Any]) -> dict[str, str]:
        return {
            k: str(v)
            for k, v in order_params.items()
            if k in ("username", "min", "max", "posts", "old_posts", "delay", "expiry")
        }


def _expiry(value: str) -> str:
    """`d/m/Y`, a date in the future."""
    try:
        day = datetime.strptime(value.strip(), "%d/%m/%Y").replace(tzinfo=UTC).date()
    except ValueError as exc:
        raise InvalidField("expiry") from exc
    if day <= datetime.now(UTC).date():
        raise InvalidField("expiry")
    return day.strftime("%d/%m/%Y")


register(SubscriptionsType())


def cost_for(type_name: str, rate: Decimal, quantity: int) -> Decimal:
    """What `quantity` units cost at `rate` under a type's charging rule (provider costs)."""
    return handler_for(type_name).charge(rate, OrderRequest("", "", quantity))


def handler_for(type_name: str) -> ServiceType:
    handler = SERVICE_TYPES.get(type_name)
    if handler is None:
        # A type the operator configured but this panel cannot take orders for yet.
        raise InvalidField("service", "This service type is not supported")
    return handler


def field_names(type_name: str) -> list[str]:
    """The fields an order of this type takes, as the front ends list them (optional ones
    end in `?`)."""
    handler = handler_for(type_name)
    if isinstance(handler, SubscriptionsType):
        return ["username", "min", "max", "posts", "old_posts?", "delay?", "expiry?"]
    assert isinstance(handler, TypeSpec)
    names = ["link"] if handler.link else []
    if handler.quantity == FIELD:
        names.append("quantity")
    if handler.lines_field:
        names.append(handler.lines_field)
    names += [name for name, _ in handler.required]
    names += [f"{name}?" for name, _ in handler.optional]
    if handler.dripfeed:
        names += ["runs?", "interval?"]
    return names
