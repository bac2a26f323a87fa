"""Refill requests: eligibility (service flag, order status, window), one active per order."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Service
from app.db import utcnow
from app.errors import Conflict, DomainError, OrderUnderReview, RefillDisabled, RefillNotFound
from app.orders.models import COMPLETED, PARTIAL, UP_MANUAL, UP_SENT, Order
from app.orders.service import get_own_order
from app.refills.models import R_PENDING, Refill


class RefillNotEligible(DomainError):
    http_status = 422
    message = "Refill is not available for this order"


class RefillExpired(DomainError):
    http_status = 422
    message = "Refill period has expired"


class RefillAlreadyActive(DomainError):
    http_status = 422
    message = "Refill is already in progress for this order"


class RefillFinished(Conflict):
    """A finished refill does not move (an operator's status included)."""

    http_status = 409
    message = "Refill already finished"


def refillable(order: Order) -> bool:
    """An order a refill can be asked for: it ended Completed or Partial and was not refunded
    in full (nothing delivered remains to top up)."""
    refunded_in_full = order.charge > 0 and order.refunded >= order.charge
    return order.status in (COMPLETED, PARTIAL) and not refunded_in_full


async def request_refill(session: AsyncSession, user_id: int, order_id: int) -> Refill:
    order = await get_own_order(session, user_id, order_id, for_update=True)
    if order.review_ticket_id is not None:
        raise OrderUnderReview()
    service = await session.get(Service, order.service_id)
    if service is None or not service.refill:
        raise RefillDisabled()
    if not refillable(order):
        raise RefillNotEligible()
    finished = order.finished_at or order.updated_at
    if service.refill_days > 0 and utcnow() > finished + timedelta(days=service.refill_days):
        raise RefillExpired()
    upstream = "queued" if order.upstream_state == UP_SENT else UP_MANUAL
    refill_id = await session.scalar(
        pg_insert(Refill)
        .values(
            order_id=order.id,
            user_id=user_id,
            status=R_PENDING,
            upstream_state=upstream,
            next_attempt_at=utcnow() if upstream == "queued" else None,
        )
        .on_conflict_do_nothing()
        .returning(Refill.id)
    )
    if refill_id is None:
        raise RefillAlreadyActive()
    refill = await session.get(Refill, refill_id)
    assert refill is not None
    return refill


async def get_own_refills(
    session: AsyncSession, user_id: int, refill_ids: list[int]
) -> dict[int, Refill]:
    if not refill_ids:
        return {}
    rows = await session.scalars(
        select(Refill).where(Refill.id.in_(set(refill_ids)), Refill.user_id == user_id)
    )
    return {r.id: r for r in rows}


async def get_own_refill(session: AsyncSession, user_id: int, refill_id: int) -> Refill:
    refill = (await get_own_refills(session, user_id, [refill_id])).get(refill_id)
    if refill is None:
        raise RefillNotFound()
    return refill
