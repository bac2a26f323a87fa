"""Stuck orders: active orders the provider accepted and has not moved for longer than
their service's `stuck_after_seconds` (STUCK_AFTER_SECONDS when the service sets none).

"Moved" is read from the order's `updated_at`: the status sync writes an order only when
the provider's report changes it (status, start count, remains), so its last write is its
last upstream progress. Each stuck order is alerted once (alert `order_stuck`), counted in
`smm_stuck_orders` and listed by `GET /admin/v1/orders?stuck=true`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts import service as alerts
from app.catalog.models import Service
from app.metrics import STUCK_ORDERS
from app.orders.models import ACTIVE_STATUSES, UP_SENT, Order


def stuck_condition(now: datetime, default_seconds: int) -> ColumnElement[bool]:
    """Orders (joined with their service) without upstream progress for too long."""
    limit = func.coalesce(Service.stuck_after_seconds, default_seconds)
    return and_(
        Order.status.in_(ACTIVE_STATUSES),
        Order.upstream_state == UP_SENT,
        Order.updated_at + func.make_interval(0, 0, 0, 0, 0, 0, limit) < now,
    )


def only_stuck(stmt: Select[Order], now: datetime, default_seconds: int) -> Select[Order]:
    return stmt.join(Service, Service.id == Order.service_id).where(
        stuck_condition(now, default_seconds)
    )


async def alert_stuck(session: AsyncSession, now: datetime, default_seconds: int) -> list[int]:
    """Alert every stuck order not alerted before; the ids of all stuck orders."""
    rows = (
        (await session.execute(only_stuck(select(Order), now, default_seconds).order_by(Order.id)))
        .scalars()
        .all()
    )
    for order in rows:
        await alerts.raise_alert(
            session,
            alerts.STUCK_ORDER,
            "order",
            order.id,
            f"order {order.id} has had no upstream progress since "
            f"{order.updated_at:%Y-%m-%d %H:%M} UTC",
            detail={
                "provider_id": order.provider_id,
                "provider_order_id": order.provider_order_id,
                "status": order.status,
                "since": order.updated_at.isoformat(),
            },
            once=True,  # never resolved: one alert per order
        )
    STUCK_ORDERS.set(len(rows))
    return [o.id for o in rows]
