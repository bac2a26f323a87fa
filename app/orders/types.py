"""Service types: how `add` fields are validated, how quantity and charge are derived,
and which fields are relayed upstream. One handler per type name shown by `services`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol
from urllib.parse import urlsplit

from app.catalog.models import Service
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
    name: str

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


def parse_link(service: Service, value: str | None) -> tuple[str, str]:
    link = (value or "").strip()
    if not link or len(link) > MAX_LINK_LENGTH or any(c.isspace() for c in link):
        raise IncorrectLink()
    try:
        parts = urlsplit(link)
        parts.port  # noqa: B018  (raises on a malformed port)
    except ValueError as exc:
        raise IncorrectLink() from exc
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise IncorrectLink()
    if service.link_pattern and not re.search(service.link_pattern, link):
        raise IncorrectLink()
    return link, normalize_link(link)


def parse_int(value: str | None, error: DomainError) -> int:
    text = (value or "").strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not digits or not digits.isascii() or not digits.isdigit() or len(digits) > MAX_INT_DIGITS:
        raise error
    return int(text)


def parse_quantity(service: Service, value: str | None) -> int:
    quantity = parse_int(value, InvalidField("Incorrect quantity"))
    check_quantity(service, quantity)
    return quantity


def check_quantity(service: Service, quantity: int) -> None:
    if quantity < service.min_quantity:
        raise QuantityTooSmall(service.min_quantity)
    if quantity > service.max_quantity:
        raise QuantityTooLarge(service.max_quantity)
    if service.step > 1 and quantity % service.step:
        raise InvalidField(f"Quantity must be a multiple of {service.step}")


def parse_dripfeed(
    service: Service, fields: Mapping[str, str]
) -> tuple[int | None, int | None]:
    """`runs` and `interval` (minutes); both or neither, only where drip-feed is allowed."""
    runs_raw, interval_raw = fields.get("runs", "").strip(), fields.get("interval", "").strip()
    if not runs_raw and not interval_raw:
        return None, None
    if not service.dripfeed:
        raise InvalidField("Drip-feed is disabled for this service")
    runs = parse_int(runs_raw, InvalidField("Incorrect runs"))
    interval = parse_int(interval_raw, InvalidField("Incorrect interval"))
    if not 1 <= runs <= 1000:
        raise InvalidField("Incorrect runs")
    if not 1 <= interval <= 60 * 24 * 30:
        raise InvalidField("Incorrect interval")
    return runs, interval


class DefaultType:
    name = "Default"

    def parse(self, service: Service, fields: Mapping[str, str]) -> OrderRequest:
        link, normalized = parse_link(service, fields.get("link"))
        quantity = parse_quantity(service, fields.get("quantity"))
        runs, interval = parse_dripfeed(service, fields)
        params: dict[str, Any] = {"quantity": quantity}
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
        return charge_for(rate, request.quantity)

    def upstream_fields(self, order_params: Mapping[str, Any]) -> dict[str, str]:
        return {k: str(v) for k, v in order_params.items()}


class PackageType:
    """A fixed bundle: the quantity is the service's, the charge is the rate itself."""

    name = "Package"

    def parse(self, service: Service, fields: Mapping[str, str]) -> OrderRequest:
        link, normalized = parse_link(service, fields.get("link"))
        return OrderRequest(link=link, link_normalized=normalized, quantity=1)

    def charge(self, rate: Decimal, request: OrderRequest) -> Decimal:
        return rate

    def upstream_fields(self, order_params: Mapping[str, Any]) -> dict[str, str]:
        return {}


SERVICE_TYPES: dict[str, ServiceType] = {}


def register(handler: ServiceType) -> None:
    SERVICE_TYPES[handler.name] = handler


register(DefaultType())
register(PackageType())


def handler_for(type_name: str) -> ServiceType:
    handler = SERVICE_TYPES.get(type_name)
    if handler is None:
        # A type the operator configured but this panel cannot take orders for yet.
        raise InvalidField("This service type is not supported")
    return handler
