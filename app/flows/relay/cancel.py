"""Cancels relayed upstream: an order whose cancel was requested after it was sent."""

from __future__ import annotations

import httpx
from sqlalchemy import (
    select,
    update,
)

from app.db import Database
from app.orders.models import (
    UP_SENT,
    Order,
    UpstreamEvent,
)
from app.providers.client import (
    ProviderError,
)
from app.providers.models import Provider
from app.providers.service import client_for
from app.settings import Settings


async def relay_cancel(
    db: Database, http: httpx.AsyncClient, settings: Settings, order_id: int
) -> str:
    """Ask the provider to cancel a sent order; the refund follows its status report."""
    async with db.session() as session:
        row = (
            await session.execute(
                select(Order, Provider)
                .join(Provider, Provider.id == Order.provider_id)
                .where(
                    Order.id == order_id,
                    Order.cancel_state == "requested",
                    Order.upstream_state == UP_SENT,
                )
            )
        ).first()
    if row is None:
        return "skipped"
    order, provider = row
    client = client_for(provider, settings.secret_key, http)
    try:
        answers = await client.cancel([order.provider_order_id or ""])
    except ProviderError as exc:
        # Not decided: the sweeper asks again later (a repeated cancel request is harmless).
        async with db.transaction() as session:
            session.add(
                UpstreamEvent(
                    order_id=order.id,
                    action="cancel",
                    outcome=type(exc).__name__,
                    detail={"message": exc.message[:500]},
                )
            )
        return "retry"
    answer = answers.get(order.provider_order_id or "")
    accepted = answer is True
    async with db.transaction() as session:
        await session.execute(
            update(Order)
            .where(Order.id == order.id, Order.cancel_state == "requested")
            .values(
                cancel_state="sent" if accepted else "rejected",
                last_error=None if accepted else getattr(answer, "message", "cancel refused"),
            )
        )
        session.add(
            UpstreamEvent(
                order_id=order.id,
                action="cancel",
                outcome="accepted" if accepted else "rejected",
                detail={} if accepted else {"message": getattr(answer, "message", "")},
            )
        )
    return "accepted" if accepted else "rejected"


async def due_cancels(db: Database, limit: int = 1000) -> list[int]:
    async with db.session() as session:
        return list(
            await session.scalars(
                select(Order.id)
                .where(Order.cancel_state == "requested", Order.upstream_state == UP_SENT)
                .limit(limit)
            )
        )
