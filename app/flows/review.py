"""The review queue: orders whose upstream outcome is unknown wait for an operator, who
resends them (the provider surely did not create them), attaches the provider's order id
(it did), or cancels them with a full refund. Each action applies only to an order still
in review, so two operators cannot both resolve one."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.flows import relay
from app.orders.models import IN_PROGRESS, UP_QUEUED, UP_REJECTED, UP_REVIEW, UP_SENT, Order
from app.providers.models import Provider
from app.settings import Settings


async def in_review(session: AsyncSession, *, limit: int, offset: int) -> list[Order]:
    return list(
        await session.scalars(
            select(Order)
            .where(Order.upstream_state == UP_REVIEW)
            .order_by(Order.id)
            .limit(limit)
            .offset(offset)
        )
    )


async def review_resend(session: AsyncSession, order_id: int) -> bool:
    return (
        await session.scalar(
            update(Order)
            .where(Order.id == order_id, Order.upstream_state == UP_REVIEW)
            .values(upstream_state=UP_QUEUED, next_attempt_at=utcnow(), sending_since=None)
            .returning(Order.id)
        )
    ) is not None


async def review_mark_sent(
    session: AsyncSession, order_id: int, provider_order_id: str, settings: Settings
) -> bool:
    """The operator found the order in the provider's panel: it is sent, with what the
    provider bills for it. The Python twin of `orders.sql.SENT_SQL` (the relay's bulk
    record of accepted orders), kept equal by tests/test_sql_twins.py."""
    order = await session.get(Order, order_id)
    provider = (
        await session.get(Provider, order.provider_id) if order and order.provider_id else None
    )
    costs = (
        await relay.upstream_costs(session, settings, [(order, provider)])
        if order and provider
        else {}
    )
    cost = costs.get(order_id)
    return (
        await session.scalar(
            update(Order)
            .where(
                Order.id == order_id,
                Order.upstream_state == UP_REVIEW,
                Order.provider_order_id.is_(None),
            )
            .values(
                upstream_state=UP_SENT,
                provider_order_id=provider_order_id,
                status=IN_PROGRESS,
                sending_since=None,
                last_error=None,
                **(cost.columns() if cost is not None else {}),
            )
            .returning(Order.id)
        )
    ) is not None


async def review_cancel(session: AsyncSession, order_id: int) -> bool:
    before = await session.scalar(
        select(Order.upstream_state).where(Order.id == order_id).with_for_update()
    )
    if before != UP_REVIEW:
        return False
    await relay.give_up(session, order_id, UP_REJECTED, "canceled by operator from review")
    return True
