"""Operator endpoints for orders: search, detail with upstream history, manual status."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from app.http.audit import Audit
from app.http.auth import require
from app.http.context import ServicesDep
from app.http.paths import Limit, Offset, PathId, QueryId
from app.http.tx import Reader, Tx
from app.orders import operator
from app.orders.schemas import OrderDetail, OrderOut, OrderStatusIn
from app.orders.service import StatusReport

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
    where = operator.OrderSearch(
        user_id=user_id,
        service_id=service_id,
        status=status_filter,
        upstream_state=upstream_state,
        link=link,
        created_from=created_from,
        created_to=created_to,
        anomaly=anomaly,
        stuck=stuck,
    )
    found = await operator.search_orders(
        session,
        where,
        limit=limit,
        offset=offset,
        stuck_after_seconds=services.settings.stuck_after_seconds,
    )
    return [OrderOut.model_validate(o) for o in found]


@admin_router.get(
    "/orders/{order_id}",
    dependencies=[require("orders:read")],
    summary="Order detail",
    description="With its upstream history, its ledger entries and drip-feed runs.",
)
async def get_order(session: Reader, order_id: PathId) -> OrderDetail:
    return await operator.order_detail(session, order_id)


@admin_router.post(
    "/orders/{order_id}/anomaly/clear",
    dependencies=[require("orders:write")],
    summary="Clear an order's anomaly flag",
    description="Once the provider's odd answer has been looked at; its `order_anomaly` "
    "alert closes with it. The order does not move; a provider that sends the same report "
    "again flags the order again.",
)
async def clear_anomaly(tx: Tx, audit: Audit, order_id: PathId) -> OrderDetail:
    before = await operator.clear_anomaly(tx, order_id)
    if before is not None:
        await audit(
            "order.anomaly.clear", "order", order_id, before=before, after={"anomaly": None}
        )
    return await operator.order_detail(tx, order_id)


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
    report = StatusReport(body.status, body.start_count, body.remains)
    done = await operator.set_status(tx, order_id, report, operator=audit.actor)
    detail = await operator.order_detail(tx, order_id)
    if done.changed:
        after = operator.summary(detail)
        await audit("order.status", "order", order_id, before=done.before, after=after)
    return detail
