"""What the console's dashboard shows, read only, each part behind the permission that
reads the same data in /admin/v1: orders by status, the review queue, stuck and anomalous
orders and orders per day (`orders:read`); open tickets (`tickets:read`); providers' last
balances and open alerts (`providers:read`); new customers (`users:read`); deposits,
charges, refunds and margin today, over 7 and 30 days, and revenue and margin per day
(`reports:read`). A part the member may not see is None, and the page leaves it out.

Days are UTC days: "today" starts at midnight UTC, "7 days" are today and the six before.
Margin is the margin report's (app/reports): what the orders placed in the period were
charged, less their refunds and less what their providers bill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.alerts import service as alerts
from app.catalog.models import Service
from app.db import utcnow
from app.http.auth import Principal
from app.ledger.models import LedgerEntry
from app.orders.models import STATUSES, UP_REVIEW, Order
from app.orders.stuck import stuck_condition
from app.providers.models import Provider
from app.reports import service as reports
from app.tickets import service as tickets

WINDOWS = (1, 7, 30)  # days, today included
CHART_DAYS = 30


@dataclass(frozen=True)
class Orders:
    by_status: list[tuple[str, int]]
    in_review: int  # the review queue: outcome upstream unknown
    support_review: int  # under a Support review (ToS 2.5)
    stuck: int
    anomalies: int


@dataclass(frozen=True)
class ProviderBalance:
    id: int
    name: str
    balance: Decimal | None
    currency: str
    low: bool  # under its alert threshold


@dataclass(frozen=True)
class Money:
    days: int
    deposits: Decimal
    charges: Decimal
    refunds: Decimal
    margin: Decimal
    orders: int


@dataclass(frozen=True)
class Dashboard:
    orders: Orders | None
    open_tickets: int | None
    providers: list[ProviderBalance] | None
    open_alerts: int | None
    money: list[Money] | None
    new_customers: list[tuple[int, int]] | None  # (days, customers)
    per_day: list[reports.DayRow] | None  # the last CHART_DAYS days, oldest first
    money_per_day: bool  # whether revenue and margin per day may be shown


def first_day(days: int, today: date) -> date:
    return today - timedelta(days=days - 1)


def midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


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
        support_review=await _count(session, Order.review_ticket_id.is_not(None)),
        stuck=int(stuck or 0),
        anomalies=await _count(session, Order.anomaly.is_not(None)),
    )


async def _providers(session: AsyncSession) -> list[ProviderBalance]:
    rows = await session.scalars(select(Provider).order_by(Provider.id))
    return [
        ProviderBalance(
            p.id,
            p.name,
            p.last_balance,
            p.currency,
            p.balance_threshold is not None
            and p.last_balance is not None
            and p.last_balance < p.balance_threshold,
        )
        for p in rows
    ]


async def _ledger(session: AsyncSession, since: datetime) -> tuple[Decimal, Decimal, Decimal]:
    def total(kind: str) -> ColumnElement[Decimal]:
        return func.coalesce(
            func.sum(case((LedgerEntry.kind == kind, LedgerEntry.amount), else_=0)), 0
        )

    row = (
        await session.execute(
            select(total("deposit"), total("charge"), total("refund")).where(
                LedgerEntry.created_at >= since
            )
        )
    ).one()
    return Decimal(row[0]), -Decimal(row[1]), Decimal(row[2])


async def _money(
    session: AsyncSession, days: int, today: date, per_day: list[reports.DayRow]
) -> Money:
    since = first_day(days, today)
    deposits, charges, refunds = await _ledger(session, midnight(since))
    inside = [row for row in per_day if row.day >= since]
    return Money(
        days,
        deposits,
        charges,
        refunds,
        sum((row.margin for row in inside), Decimal(0)),
        sum(row.orders for row in inside),
    )


async def _new_customers(session: AsyncSession, today: date) -> list[tuple[int, int]]:
    found = []
    for days in WINDOWS:
        since = midnight(first_day(days, today))
        count = await session.scalar(select(func.count(User.id)).where(User.created_at >= since))
        found.append((days, int(count or 0)))
    return found


async def read(session: AsyncSession, principal: Principal, stuck_after_seconds: int) -> Dashboard:
    today = utcnow().date()
    see_orders, see_money = principal.may("orders:read"), principal.may("reports:read")
    see_providers = principal.may("providers:read")
    per_day = (
        await reports.daily(session, first=first_day(CHART_DAYS, today), days=CHART_DAYS)
        if see_orders or see_money
        else None
    )
    open_alerts = await alerts.open_count(session) if see_providers else None
    return Dashboard(
        orders=await _orders(session, stuck_after_seconds) if see_orders else None,
        open_tickets=await tickets.open_count(session) if principal.may("tickets:read") else None,
        providers=await _providers(session) if see_providers else None,
        open_alerts=open_alerts,
        money=[await _money(session, d, today, per_day or []) for d in WINDOWS]
        if see_money
        else None,
        new_customers=await _new_customers(session, today) if principal.may("users:read") else None,
        per_day=per_day,
        money_per_day=see_money,
    )
