"""The review queue: orders whose upstream outcome is unknown wait for an operator, who
resends them (the provider surely did not create them), attaches the provider's order id
(it did), or cancels them with a full refund. Each action applies only to an order still
in review, so two operators cannot both resolve one.

After a worker crash many orders of one provider land here at once: bulk actions resolve
a selection (a provider and a window of creation times) the same way, order by order,
each with its own audit entry. Each order shows the exact request its attempt sent, so
the operator can look it up in the provider's panel before deciding.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import after_commit, utcnow
from app.errors import Conflict, IncorrectRequest
from app.flows import relay
from app.jobs import JobQueue
from app.orders import anomalies
from app.orders import service as orders
from app.orders.models import IN_PROGRESS, UP_QUEUED, UP_REJECTED, UP_REVIEW, UP_SENT, Order
from app.providers.models import Provider
from app.settings import Settings


class NotInReviewQueue(Conflict):
    """Resolved already (by another operator, or by the order's own progress)."""

    http_status = 409
    message = "order is not in the review queue"


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
    record of accepted orders), kept equal by tests/test_sql_twins.py. An upstream id
    another order of the provider holds is refused (Conflict): one report, one order."""
    order = await session.get(Order, order_id)
    if order is not None and order.provider_id is not None:
        key = (order.provider_id, provider_order_id)
        holder = (await anomalies.holders(session, {key})).get(key)
        if holder is not None and holder != order_id:
            raise Conflict(
                f"Provider order id {provider_order_id} already belongs to order {holder}"
            )
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
    await orders.lock_owners(session, [order_id])  # the owner first: the lock order
    before = await session.scalar(
        select(Order.upstream_state).where(Order.id == order_id).with_for_update()
    )
    if before != UP_REVIEW:
        return False
    await relay.give_up(session, order_id, UP_REJECTED, "canceled by operator from review")
    return True


BULK_LIMIT = 1000


@dataclass(frozen=True)
class Selection:
    """Orders in review sent to one provider, created in [created_from, created_to), or
    (`order_ids`) these orders; a None bound is no bound."""

    provider_id: int | None
    created_from: datetime | None
    created_to: datetime | None
    order_ids: tuple[int, ...] | None = None


async def select_in_review(
    session: AsyncSession, selection: Selection, *, lock: bool = False
) -> list[int]:
    """The selected orders still in review, oldest first (at most BULK_LIMIT). Locked rows
    another operator is resolving right now are skipped."""
    stmt = (
        select(Order.id)
        .where(Order.upstream_state == UP_REVIEW)
        .order_by(Order.id)
        .limit(BULK_LIMIT)
    )
    if selection.provider_id is not None:
        stmt = stmt.where(Order.provider_id == selection.provider_id)
    if selection.created_from is not None:
        stmt = stmt.where(Order.created_at >= selection.created_from)
    if selection.created_to is not None:
        stmt = stmt.where(Order.created_at < selection.created_to)
    if selection.order_ids is not None:
        stmt = stmt.where(Order.id.in_(selection.order_ids))
    if lock:
        stmt = stmt.with_for_update(skip_locked=True)
    return list(await session.scalars(stmt))


async def bulk_resend(session: AsyncSession, selection: Selection) -> list[int]:
    """Queue every selected order again; the ids resent."""
    resent = []
    for order_id in await select_in_review(session, selection, lock=True):
        if await review_resend(session, order_id):
            resent.append(order_id)
    return resent


async def bulk_cancel(session: AsyncSession, selection: Selection) -> list[int]:
    """Cancel every selected order with a full refund (each refunded once); the ids."""
    canceled = []
    selected = await select_in_review(session, selection)
    # Refunds touch many users: every owner first, then the orders, each by ascending id
    # (the lock order); an order that left review meanwhile is skipped by review_cancel.
    await orders.lock_owners(session, selected)
    for order_id in selected:
        if await review_cancel(session, order_id):
            canceled.append(order_id)
    return canceled


BULK_ACTIONS = ("resend", "cancel")


async def run_bulk(
    session: AsyncSession, jobs: JobQueue, selection: Selection, action: str, *, dry_run: bool
) -> list[int]:
    """Resend or cancel the selection (at most BULK_LIMIT orders); with `dry_run`, only the
    ids it would take, changing nothing. Resent orders are relayed after the commit."""
    if action not in BULK_ACTIONS:
        raise IncorrectRequest("Incorrect action: " + ", ".join(BULK_ACTIONS))
    if dry_run:
        return await select_in_review(session, selection)
    if action == "cancel":
        return await bulk_cancel(session, selection)
    ids = await bulk_resend(session, selection)
    if ids:
        after_commit(session, jobs.relay_due)
    return ids


RESEND, MARK_SENT, CANCEL = "resend", "mark_sent", "cancel"


async def resolve(
    session: AsyncSession,
    jobs: JobQueue,
    settings: Settings,
    order_id: int,
    action: str,
    provider_order_id: str | None = None,
) -> None:
    """One order out of the queue: resent (relayed after the commit), marked sent with the
    provider's order id, or canceled with a full refund; NotInReviewQueue when another operator
    resolved it first."""
    if action == RESEND:
        done = await review_resend(session, order_id)
        if done:
            after_commit(session, partial(jobs.relay_order, order_id))
    elif action == MARK_SENT:
        if not provider_order_id:
            raise IncorrectRequest("Enter the provider's order id")
        done = await review_mark_sent(session, order_id, provider_order_id, settings)
    elif action == CANCEL:
        done = await review_cancel(session, order_id)
    else:
        raise IncorrectRequest("Incorrect action: resend, mark_sent, cancel")
    if not done:
        raise NotInReviewQueue()
