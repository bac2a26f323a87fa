"""Margin reports: what users paid against what providers billed, per service or provider.

Revenue is read from the ledger (charges minus refunds of the orders placed in the range),
so drip-feed runs and refunds land where the money actually moved. Cost is what each sent
order is billed upstream under the provider's own rules (a Partial order costs the
delivered share, a Canceled one nothing), converted at the rate of the day it was sent.
An order whose cost is not known yet (`unpriced`: still waiting to be accepted upstream,
or sent without a known charge or rate) is counted apart with its revenue, and the margin
is that of the priced orders only: an unsent order is never a free sale at 100 %.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.orders.models import CANCELED, PARTIAL
from app.reports.sql import AWAITING_UPSTREAM, COST, DAY_KEY, GROUPS, ORDERS, REVENUE

GroupBy = Literal["service", "provider"]
EIGHT = Decimal("0.00000001")


def order_cost(
    status: str, provider_charge: Decimal, quantity: int, remains: int | None
) -> Decimal:
    """What the provider bills for a sent order, in its currency: nothing when Canceled,
    the delivered share when Partial, the whole charge otherwise (the twin of COST_EXPR in
    app/reports/sql.py, which computes it for a whole range in PostgreSQL)."""
    if status == CANCELED:
        return Decimal(0)
    if status == PARTIAL:
        return provider_charge * (quantity - (remains or 0)) / quantity
    return provider_charge


def unpriced(
    upstream_state: str,
    status: str,
    provider_order_id: str | None,
    provider_charge: Decimal | None,
    fx_rate: Decimal | None,
) -> bool:
    """Whether an order's cost is unknown (the twin of UNPRICED_EXPR in app/reports/sql.py):
    sent without the provider's charge or a conversion rate, or not yet accepted upstream
    (queued, being sent, in review) and not canceled."""
    if provider_order_id is not None:
        return provider_charge is None or fx_rate is None
    return upstream_state in AWAITING_UPSTREAM and status != CANCELED


@dataclass
class MarginRow:
    key: int | None
    name: str
    orders: int = 0
    revenue: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    unpriced_orders: int = 0  # orders whose cost is unknown (`unpriced`)
    unpriced_revenue: Decimal = Decimal(0)  # their share of `revenue`

    @property
    def priced_revenue(self) -> Decimal:
        return self.revenue - self.unpriced_revenue

    @property
    def margin(self) -> Decimal:
        """Of the priced orders only: their revenue less their cost."""
        return self.priced_revenue - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        if self.priced_revenue <= 0:
            return None
        return (self.margin * 100 / self.priced_revenue).quantize(Decimal("0.01"), ROUND_HALF_EVEN)


@dataclass
class MarginReport:
    start: datetime
    end: datetime
    group_by: GroupBy
    currency: str
    rows: list[MarginRow] = field(default_factory=list)

    @property
    def total(self) -> MarginRow:
        total = MarginRow(None, "total")
        for row in self.rows:
            total.orders += row.orders
            total.revenue += row.revenue
            total.cost += row.cost
            total.unpriced_orders += row.unpriced_orders
            total.unpriced_revenue += row.unpriced_revenue
        return total


async def margin_report(
    session: AsyncSession, *, start: datetime, end: datetime, group_by: GroupBy, currency: str
) -> MarginReport:
    key, names_sql = GROUPS[group_by]
    params = {"start": start, "end": end}
    rows: dict[int | None, MarginRow] = {}

    def row(k: int | None) -> MarginRow:
        return rows.setdefault(k, MarginRow(k, ""))

    for k, revenue in await session.execute(text(REVENUE.format(key=key)), params):
        row(k).revenue = Decimal(revenue)
    for k, orders in await session.execute(text(ORDERS.format(key=key)), params):
        row(k).orders = orders
    cost_rows = await session.execute(text(COST.format(key=key)), params)
    for k, cost, unpriced_orders, unpriced_revenue in cost_rows:
        row(k).cost = Decimal(cost or 0).quantize(EIGHT, ROUND_HALF_EVEN)
        row(k).unpriced_orders = unpriced_orders
        row(k).unpriced_revenue = Decimal(unpriced_revenue or 0)
    keys = [k for k in rows if k is not None]
    result = await session.execute(text(names_sql), {"keys": keys})
    names: dict[int, str] = {k: name for k, name in result}
    for k, item in rows.items():
        item.name = names.get(k, "") if k is not None else "manual (no provider)"
    ordered = sorted(rows.values(), key=lambda r: (r.key is None, r.key or 0))
    return MarginReport(start, end, group_by, currency, ordered)


@dataclass
class DayRow:
    """One UTC day of the report per day: the orders placed that day and their money."""

    day: date
    orders: int = 0
    revenue: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)
    unpriced_revenue: Decimal = Decimal(0)  # of orders whose cost is not known yet

    @property
    def margin(self) -> Decimal:
        """On the priced orders only, as the margin report's (unpriced ones are no profit)."""
        return self.revenue - self.unpriced_revenue - self.cost


async def daily(session: AsyncSession, *, first: date, days: int) -> list[DayRow]:
    """Orders, revenue, cost and margin of each UTC day from `first` on, `days` of them
    (every day listed, a quiet one with zeros); the same statements as the margin report,
    grouped by the day the orders were placed."""
    found = {first + timedelta(days=n): DayRow(first + timedelta(days=n)) for n in range(days)}
    start = datetime.combine(first, time.min, tzinfo=UTC)
    params = {"start": start, "end": start + timedelta(days=days)}
    for day, revenue in await session.execute(text(REVENUE.format(key=DAY_KEY)), params):
        found[day].revenue = Decimal(revenue)
    for day, orders in await session.execute(text(ORDERS.format(key=DAY_KEY)), params):
        found[day].orders = orders
    costs = await session.execute(text(COST.format(key=DAY_KEY)), params)
    for day, cost, _unpriced, unpriced_revenue in costs:
        found[day].cost = Decimal(cost or 0).quantize(EIGHT, ROUND_HALF_EVEN)
        found[day].unpriced_revenue = Decimal(unpriced_revenue or 0)
    return list(found.values())
