"""What the console's dashboard shows, read only, each part behind the permission that
reads the same data in /admin/v1: orders by status, the review queue, stuck and anomalous
orders (`orders:read`); open tickets (`tickets:read`); providers' last balances and open
alerts (`providers:read`); deposits, charges and refunds over the last day, 7 and 30 days
(`reports:read`). A part the member may not see is None, and the page leaves it out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts.models import Alert
from app.catalog.models import Service
from app.db import utcnow
from app.http.auth import Principal
from app.ledger.models import LedgerEntry
from app.orders.models import STATUSES, UP_REVIEW, Order
from app.orders.stuck import stuck_condition
from app.providers.models import Provider
from app.tickets import service as tickets

WINDOWS = (1, 7, 30)  # days


@dataclass(frozen=True)
class Orders:
    by_status: list[tuple[str, int]]
    in_review: int
    stuck: int
    anomalies: int


@dataclass(frozen=True)
class ProviderBalance:
    name: str
    balance: Decimal | None
    currency: str


@dataclass(frozen=True)
class Money:
    days: int
    deposits: Decimal
    charges: Decimal
    refunds: Decimal


@dataclass(frozen=True)
class Dashboard:
    orders: Orders | None
    open_tickets: int | None
    providers: list[ProviderBalance] | None
    open_alerts: int | None
    money: list[Money] | None


async def _count(session: AsyncSession, *where: ColumnElement[bool]) -> int:
    return int(await session.scalar(select(func.count(Order.id)).where(*where)) or 0)


async def _orders(session: AsyncSession, stuck_after_seconds: int) -> Orders:
    counts = dict(
        (
            await session.execute(
                select(Order.status, func.count(Order.id))
                .where(Order.parent_id.is_(None))
                .group_by(Order.status)
            )
        ).all()
    )
    stuck = await session.scalar(
        select(func.count(Order.id))
        .join(Service, Service.id == Order.service_id)
        .where(stuck_condition(utcnow(), stuck_after_seconds))
    )
    return Orders(
        by_status=[(status, int(counts.get(status, 0))) for status in STATUSES],
        in_review=await _count(session, Order.upstream_state == UP_REVIEW),
        stuck=int(stuck or 0),
        anomalies=await _count(session, Order.anomaly.is_not(None)),
    )


async def _providers(session: AsyncSession) -> list[ProviderBalance]:
    rows = await session.scalars(select(Provider).order_by(Provider.id))
    return [ProviderBalance(p.name, p.last_balance, p.currency) for p in rows]


async def _money(session: AsyncSession, days: int) -> Money:
    def total(kind: str) -> ColumnElement[Decimal]:
        return func.coalesce(
            func.sum(case((LedgerEntry.kind == kind, LedgerEntry.amount), else_=0)), 0
        )

    row = (
        await session.execute(
            select(total("deposit"), total("charge"), total("refund")).where(
                LedgerEntry.created_at >= utcnow() - timedelta(days=days)
            )
        )
    ).one()
    return Money(days, Decimal(row[0]), -Decimal(row[1]), Decimal(row[2]))


async def read(session: AsyncSession, principal: Principal, stuck_after_seconds: int) -> Dashboard:
    orders = await _orders(session, stuck_after_seconds) if principal.may("orders:read") else None
    see_providers = principal.may("providers:read")
    open_alerts = (
        int(
            await session.scalar(select(func.count(Alert.id)).where(Alert.resolved_at.is_(None)))
            or 0
        )
        if see_providers
        else None
    )
    return Dashboard(
        orders=orders,
        open_tickets=await tickets.open_count(session) if principal.may("tickets:read") else None,
        providers=await _providers(session) if see_providers else None,
        open_alerts=open_alerts,
        money=[await _money(session, d) for d in WINDOWS]
        if principal.may("reports:read")
        else None,
    )
