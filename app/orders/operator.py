"""What an operator does with orders, whichever front end asks (/admin/v1, the console):
search them by every filter, read one with its upstream history, the exact request its
last attempt sent and its ledger entries, set a status by hand where the rules allow, and
clear an anomaly flag once looked at.

A status set by hand follows the same rule as a provider's report (`apply_status`): a
finished order never moves, Partial and Canceled refund exactly once, and a drip-feed
order's status follows its runs. Rows are locked before they are read for a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.errors import NotFound
from app.ledger.models import LedgerEntry
from app.ledger.schemas import LedgerEntryOut
from app.orders import anomalies
from app.orders.history import last_sent_requests
from app.orders.models import Order, UpstreamEvent
from app.orders.schemas import EventOut, OrderDetail, OrderOut, SentRequestOut
from app.orders.service import (
    StatusReport,
    apply_status,
    lock_owners,
    refuse_operator_status,
)
from app.orders.stuck import only_stuck


class OrderNotFound(NotFound):
    http_status = 404
    message = "Order not found"


@dataclass(frozen=True)
class OrderSearch:
    """The operator's filters of the order list (None: any)."""

    user_id: int | None = None
    service_id: int | None = None
    provider_id: int | None = None
    status: str | None = None
    upstream_state: str | None = None
    link: str | None = None  # a part of the link
    created_from: datetime | None = None
    created_to: datetime | None = None  # exclusive
    anomaly: bool | None = None  # True: flagged only, False: unflagged only
    stuck: bool | None = None  # True: stuck only
    under_review: bool | None = None  # True: under a Support review only


async def search_orders(
    session: AsyncSession,
    where: OrderSearch,
    *,
    limit: int,
    offset: int,
    stuck_after_seconds: int,
) -> list[Order]:
    """Orders matching `where`, newest first."""
    stmt = select(Order).order_by(Order.id.desc()).limit(limit).offset(offset)
    if where.stuck:
        stmt = only_stuck(stmt, utcnow(), stuck_after_seconds)
    equal = {
        Order.user_id: where.user_id,
        Order.service_id: where.service_id,
        Order.provider_id: where.provider_id,
        Order.status: where.status,
        Order.upstream_state: where.upstream_state,
    }
    for column, value in equal.items():
        if value is not None:
            stmt = stmt.where(column == value)
    if where.link:
        stmt = stmt.where(Order.link.contains(where.link, autoescape=True))
    if where.created_from is not None:
        stmt = stmt.where(Order.created_at >= where.created_from)
    if where.created_to is not None:
        stmt = stmt.where(Order.created_at < where.created_to)
    if where.anomaly is not None:
        stmt = stmt.where(Order.anomaly.is_not(None) if where.anomaly else Order.anomaly.is_(None))
    if where.under_review:
        stmt = stmt.where(Order.review_ticket_id.is_not(None))
    return list(await session.scalars(stmt))


async def get_order(session: AsyncSession, order_id: int, *, lock: bool = False) -> Order:
    stmt = select(Order).where(Order.id == order_id)
    order = await session.scalar(stmt.with_for_update() if lock else stmt)
    if order is None:
        raise OrderNotFound()
    return order


async def order_detail(session: AsyncSession, order_id: int) -> OrderDetail:
    """The order with its upstream history, its last attempt's request, its ledger entries
    and its drip-feed runs."""
    order = await get_order(session, order_id)
    events = await session.scalars(
        select(UpstreamEvent).where(UpstreamEvent.order_id == order_id).order_by(UpstreamEvent.id)
    )
    runs = list(
        await session.scalars(select(Order).where(Order.parent_id == order_id).order_by(Order.id))
    )
    family = [order_id, *(r.id for r in runs)]
    entries = await session.scalars(
        select(LedgerEntry).where(LedgerEntry.order_id.in_(family)).order_by(LedgerEntry.id)
    )
    sent = (await last_sent_requests(session, [order_id])).get(order_id)
    return OrderDetail(
        **OrderOut.model_validate(order).model_dump(),
        params=order.params,
        sent_request=SentRequestOut.of(sent),
        upstream_history=[EventOut.model_validate(e) for e in events],
        ledger=[LedgerEntryOut.model_validate(e) for e in entries],
        runs_of=[OrderOut.model_validate(r) for r in runs],
    )


def summary(detail: OrderDetail) -> OrderOut:
    """The order itself, without its history (what the audit log keeps of a change)."""
    return OrderOut(
        **detail.model_dump(
            exclude={"params", "sent_request", "upstream_history", "ledger", "runs_of"}
        )
    )


@dataclass(frozen=True)
class StatusSet:
    before: OrderOut
    changed: bool


async def set_status(
    session: AsyncSession, order_id: int, report: StatusReport, *, operator: str
) -> StatusSet:
    """An operator's status for an order fulfilled by hand (refunds by rule, once)."""
    await lock_owners(session, [order_id])  # the owner, then the order: the lock order
    order = await get_order(session, order_id, lock=True)
    refuse_operator_status(order)
    before = OrderOut.model_validate(order)
    changed = await apply_status(session, order_id, report, source=f"operator:{operator}")
    return StatusSet(before, changed)


async def clear_anomaly(session: AsyncSession, order_id: int) -> dict[str, Any] | None:
    """Clear the order's anomaly flag; what it was (None: there was none). The order does
    not move; a provider sending the same report again flags it again."""
    order = await get_order(session, order_id, lock=True)
    if order.anomaly is None:
        return None
    flagged_at = order.anomaly_at.isoformat() if order.anomaly_at else None
    before = {"anomaly": order.anomaly, "anomaly_at": flagged_at}
    await anomalies.clear(session, order)
    return before
