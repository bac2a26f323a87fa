"""Operator endpoints for orders: search, detail with upstream history, manual status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.http.audit import Audit
from app.http.auth import require
from app.http.context import ServicesDep
from app.http.paths import Limit, Offset, PathId, QueryId
from app.http.problems import Problem, get_or_404
from app.http.tx import Reader, Tx
from app.ledger.models import LedgerEntry
from app.ledger.schemas import LedgerEntryOut
from app.orders import anomalies
from app.orders.history import last_sent_requests
from app.orders.models import Order, UpstreamEvent
from app.orders.schemas import EventOut, OrderDetail, OrderOut, OrderStatusIn, SentRequestOut
from app.orders.service import StatusReport, apply_status, refuse_operator_status
from app.orders.stuck import only_stuck

admin_router = APIRouter(tags=["orders"])


@admin_router.get(
    "/orders", dependencies=[require("orders:read")], summary="Search orders, newest first"
)
async def list_orders(
    session: Reader,
    services: ServicesDep,
    limit: Limit = 100,
    offset: Offset = 0,
    user_id: QueryId | None = None,
    service_id: QueryId | None = None,
    status_filter: Annotated[str | None, Query(alias="status")] = None,
    upstream_state: str | None = None,
    link: Annotated[str | None, Query(description="part of the link")] = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    anomaly: Annotated[
        bool | None,
        Query(description="true: only orders flagged with an anomalous provider answer"),
    ] = None,
    stuck: Annotated[
        bool | None,
        Query(
            description="true: only active orders without upstream progress for longer than "
            "their service's stuck_after_seconds (default STUCK_AFTER_SECONDS, 24 h)"
        ),
    ] = None,
) -> list[OrderOut]:
    stmt = select(Order).order_by(Order.id.desc()).limit(limit).offset(offset)
    if stuck:
        stmt = only_stuck(stmt, utcnow(), services.settings.stuck_after_seconds)
    filters = {
        Order.user_id: user_id,
        Order.service_id: service_id,
        Order.status: status_filter,
        Order.upstream_state: upstream_state,
    }
    for column, value in filters.items():
        if value is not None:
            stmt = stmt.where(column == value)
    if link:
        stmt = stmt.where(Order.link.contains(link, autoescape=True))
    if created_from is not None:
        stmt = stmt.where(Order.created_at >= created_from)
    if created_to is not None:
        stmt = stmt.where(Order.created_at < created_to)
    if anomaly is not None:
        stmt = stmt.where(Order.anomaly.is_not(None) if anomaly else Order.anomaly.is_(None))
    return [OrderOut.model_validate(o) for o in await session.scalars(stmt)]


async def order_detail(session: AsyncSession, order_id: int) -> OrderDetail:
    order = await get_or_404(session, Order, order_id, "Order")
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


@admin_router.get(
    "/orders/{order_id}",
    dependencies=[require("orders:read")],
    summary="Order detail",
    description="With its upstream history, its ledger entries and drip-feed runs.",
)
async def get_order(session: Reader, order_id: PathId) -> OrderDetail:
    return await order_detail(session, order_id)


@admin_router.post(
    "/orders/{order_id}/anomaly/clear",
    dependencies=[require("orders:write")],
    summary="Clear an order's anomaly flag",
    description="Once the provider's odd answer has been looked at; its `order_anomaly` "
    "alert closes with it. The order does not move; a provider that sends the same report "
    "again flags the order again.",
)
async def clear_anomaly(tx: Tx, audit: Audit, order_id: PathId) -> OrderDetail:
    order = await tx.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None:
        raise Problem(404, "Order not found")
    if order.anomaly is not None:
        flagged_at = order.anomaly_at.isoformat() if order.anomaly_at else None
        before = {"anomaly": order.anomaly, "anomaly_at": flagged_at}
        await anomalies.clear(tx, order)
        await audit(
            "order.anomaly.clear", "order", order_id, before=before, after={"anomaly": None}
        )
    return await order_detail(tx, order_id)


@admin_router.post(
    "/orders/{order_id}/status",
    dependencies=[require("orders:write")],
    summary="Set an order's status",
    description="For orders fulfilled by hand. Partial and Canceled refund by rule, "
    "exactly once; a finished order does not move (409).",
)
async def set_order_status(
    tx: Tx, audit: Audit, order_id: PathId, body: OrderStatusIn
) -> OrderDetail:
    order = await tx.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None:
        raise Problem(404, "Order not found")
    refuse_operator_status(order)
    before = OrderOut.model_validate(order)
    changed = await apply_status(
        tx,
        order_id,
        StatusReport(body.status, body.start_count, body.remains),
        source=f"operator:{audit.actor}",
    )
    detail = await order_detail(tx, order_id)
    if changed:
        after = OrderOut(
            **detail.model_dump(
                exclude={"params", "sent_request", "upstream_history", "ledger", "runs_of"}
            )
        )
        await audit("order.status", "order", order_id, before=before, after=after)
    return detail
