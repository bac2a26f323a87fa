"""What the relay's modules share: a claimed order (`Claim`) and the fields sent upstream
for it, an outcome (`RelayOutcome`), the retry backoff, and savepoint helpers. The
relay logs under `app.flows.relay`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.orders.types import handler_for
from app.providers.client import (
    ProviderError,
)
from app.providers.models import Provider
from app.settings import Settings

log = logging.getLogger("app.flows.relay")


FUNDS_ERROR = "not enough funds"


@dataclass(frozen=True)
class RelayOutcome:
    order_id: int
    outcome: str  # sent, retry, review, rejected, gave_up, skipped, failover
    cancel_due: bool = False


def backoff(settings: Settings, attempts: int) -> timedelta:
    seconds = settings.relay_retry_base_seconds * (2 ** max(0, attempts - 1))
    return timedelta(seconds=min(seconds, 3600))


class RelayedOrder(Protocol):
    """What relaying needs of an order: a full Order or a claimed row."""

    @property
    def type(self) -> str: ...
    @property
    def link(self) -> str: ...
    @property
    def params(self) -> dict[str, Any]: ...
    @property
    def provider_service_id(self) -> str | None: ...


def upstream_fields(order: RelayedOrder) -> dict[str, str]:
    fields = {"service": order.provider_service_id or "", "link": order.link}
    fields.update(handler_for(order.type).upstream_fields(order.params))
    if order.link == "":
        fields.pop("link")
    return fields


@dataclass(frozen=True)
class Claim:
    """An order whose attempt is recorded and committed (`sending`): it may now leave."""

    id: int
    type: str
    link: str
    params: dict[str, Any]
    quantity: int
    service_id: int
    parent_id: int | None
    provider_id: int
    provider_service_id: str | None
    attempts: int
    created_at: datetime
    upstream_request_id: str | None
    provider: Provider


def request_id_for(order_id: int, created_at: datetime) -> str:
    """Our request id for an order's `add` upstream: its id and creation instant, so ids
    never repeat, even across a database rebuilt from scratch."""
    return f"o{order_id}.{int(created_at.timestamp() * 1_000_000):x}"


def outgoing_fields(claim: Claim) -> dict[str, str]:
    """What an attempt sends: the order's fields, and its request id once it has one."""
    fields = upstream_fields(claim)
    if claim.upstream_request_id is not None:
        fields["request_id"] = claim.upstream_request_id
    return fields


Answer = str | ProviderError  # the provider's order id, or why there is none


T = TypeVar("T")


async def _in_savepoint(session: AsyncSession, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` in a savepoint: if it fails, only its own changes are undone."""
    async with session.begin_nested():
        return await work()


def _reason(exc: DBAPIError) -> str:
    return str(exc.orig if exc.orig is not None else exc).splitlines()[0][:300]
