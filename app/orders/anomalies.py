"""Anomalies: what a provider said about one order that cannot be applied as it is (a
number out of range, a status we cannot act on, a Partial without readable remains, an
upstream order id already bound to another order of the same provider).

An anomaly touches its own order only, and never moves money: it is flagged on the order
(`anomaly`, `anomaly_at`: listed by `GET /admin/v1/orders?anomaly=true`), recorded in the
order's upstream history, counted (`smm_provider_anomalies_total{provider_id,kind}`) and
alerted once per episode (`order_anomaly`, open until the operator clears the flag). The
operator decides, or a later readable report applies.

An upstream order id names at most one order of its provider: the partial unique index
`uq_orders_provider_order_id` keeps it so, whoever binds it (the relay, an operator). A
second order answered with an id already in use is not bound: it is held in review with
the anomaly `duplicate_order_id` (`hold_duplicate`), so one report never moves two orders.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.alerts import service as alerts
from app.db import utcnow
from app.metrics import PROVIDER_ANOMALIES
from app.orders.models import UP_REVIEW, UP_SENDING, Order, UpstreamEvent

log = logging.getLogger(__name__)

DUPLICATE_ORDER_ID = "duplicate_order_id"

# What an anomaly is, as flagged on an order: {"kind", "field", "value"}, all text.
AnomalyJson = dict[str, str]


def describe(anomalies: Sequence[AnomalyJson]) -> str:
    return "; ".join(f"{a['field']} {a['kind']} ({a['value']})" for a in anomalies)


async def flag(
    session: AsyncSession,
    order_id: int,
    anomalies: list[AnomalyJson],
    *,
    provider_id: int | None,
    action: str,
    detail: dict[str, Any],
    again: bool = False,
) -> bool:
    """Flag the order, record the event, count and alert, in the caller's transaction.
    Once for as long as the provider keeps sending the same anomalies, unless `again`
    (every occurrence is an event of its own). Whether it was flagged now."""
    assert anomalies, "an anomaly names what could not be applied"
    stmt = update(Order).where(Order.id == order_id)
    if not again:
        stmt = stmt.where(Order.anomaly.is_distinct_from(anomalies))
    flagged = await session.scalar(
        stmt.values(anomaly=anomalies, anomaly_at=utcnow()).returning(Order.id)
    )
    if flagged is None:
        return False
    session.add(
        UpstreamEvent(
            order_id=order_id,
            action=action,
            outcome="anomaly",
            detail={**detail, "anomalies": anomalies},
        )
    )
    for anomaly in anomalies:
        PROVIDER_ANOMALIES.labels(str(provider_id), anomaly["kind"]).inc()
    await alerts.raise_alert(
        session,
        alerts.ORDER_ANOMALY,
        "order",
        order_id,
        f"order {order_id}: provider answer not applied: {describe(anomalies)}",
        detail={"provider_id": provider_id, "action": action, "anomalies": anomalies},
        once=True,  # resolved when the operator clears the flag
    )
    log.warning(
        "provider answer not applied: %s",
        describe(anomalies),
        extra={"provider_id": provider_id, "order_id": order_id, "anomalies": anomalies},
    )
    return True


async def clear(session: AsyncSession, order: Order) -> None:
    """The operator looked at the order: its flag goes, its alert closes (a new anomaly
    is alerted again)."""
    order.anomaly, order.anomaly_at = None, None
    await session.flush()
    await alerts.resolve(session, alerts.ORDER_ANOMALY, "order", order.id)


async def holders(
    session: AsyncSession, bindings: Collection[tuple[int, str]]
) -> dict[tuple[int, str], int]:
    """The orders that hold these (provider id, upstream order id) pairs already."""
    if not bindings:
        return {}
    rows = await session.execute(
        select(Order.provider_id, Order.provider_order_id, Order.id).where(
            tuple_(Order.provider_id, Order.provider_order_id).in_(list(bindings))
        )
    )
    return {(int(p), str(u)): int(o) for p, u, o in rows if p is not None and u is not None}


async def hold_duplicate(
    session: AsyncSession, order_id: int, provider_id: int, upstream_id: str, holder_id: int
) -> bool:
    """The provider answered an id another of its orders holds: the order is not bound to
    it but held in review, flagged for the operator. Only from `sending` or `review`
    (where an answer may still be recorded); whether it was held."""
    message = f"provider order id {upstream_id} already belongs to order {holder_id}"
    held = await session.scalar(
        update(Order)
        .where(
            Order.id == order_id,
            Order.upstream_state.in_((UP_SENDING, UP_REVIEW)),
            Order.provider_order_id.is_(None),
        )
        .values(upstream_state=UP_REVIEW, sending_since=None, last_error=message)
        .returning(Order.id)
    )
    if held is None:
        return False
    await flag(
        session,
        order_id,
        [{"kind": DUPLICATE_ORDER_ID, "field": "order", "value": upstream_id}],
        provider_id=provider_id,
        action="add",
        detail={"provider_order_id": upstream_id, "bound_to": holder_id},
        again=True,
    )
    return True
