"""What the provider bills for an order (`UpstreamCost`), in the shop's currency."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from sqlalchemy import (
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Service, ServiceBackup
from app.currencies.service import NoConversionRate, conversion_rate
from app.orders.types import cost_for
from app.providers.models import Provider
from app.settings import Settings


@dataclass(frozen=True)
class UpstreamCost:
    charge: Decimal
    currency: str
    fx_rate: Decimal | None

    def columns(self) -> dict[str, object]:
        return {
            "provider_charge": self.charge,
            "provider_currency": self.currency,
            "fx_rate": self.fx_rate,
        }


class CostedOrder(Protocol):
    """What pricing needs of a sent order: a full Order or a claimed row."""

    @property
    def id(self) -> int: ...
    @property
    def service_id(self) -> int: ...
    @property
    def type(self) -> str: ...
    @property
    def quantity(self) -> int: ...


async def upstream_costs(
    session: AsyncSession, settings: Settings, orders: Sequence[tuple[CostedOrder, Provider]]
) -> dict[int, UpstreamCost]:
    """What the provider bills for each order and the conversion rate of the day; orders
    whose service has no provider rate are left out (the margin report lists them). An
    order taken by one of the service's backup providers (failover) costs that backup's
    rate."""
    service_ids = {order.service_id for order, _ in orders}
    primaries = {
        service_id: (provider_id, rate)
        for service_id, provider_id, rate in await session.execute(
            select(Service.id, Service.provider_id, Service.provider_rate).where(
                Service.id.in_(service_ids)
            )
        )
    }
    backup_rates = {
        (b.service_id, b.provider_id): b.provider_rate
        for b in await session.scalars(
            select(ServiceBackup).where(ServiceBackup.service_id.in_(service_ids))
        )
    }
    fx_rates: dict[str, Decimal | None] = {}
    costs: dict[int, UpstreamCost] = {}
    for order, provider in orders:
        primary_id, provider_rate = primaries.get(order.service_id, (None, None))
        if provider.id != primary_id and (order.service_id, provider.id) in backup_rates:
            provider_rate = backup_rates[(order.service_id, provider.id)]
        if provider_rate is None:
            continue
        currency = provider.currency
        if currency not in fx_rates:
            try:
                fx_rates[currency] = await conversion_rate(session, settings, currency)
            except NoConversionRate:
                fx_rates[currency] = None  # the margin report lists such orders as unpriced
        costs[order.id] = UpstreamCost(
            cost_for(order.type, provider_rate, order.quantity), currency, fx_rates[currency]
        )
    return costs
