"""The sweeper's part of the relay: stale `sending` attempts (a worker died mid-call)
moved to review or sent again with their request id, reviews with a request id
requeued, and the orders due for a relay job."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import (
    select,
    update,
)

from app.db import Database, utcnow
from app.flows.relay.common import log
from app.orders.models import (
    PENDING,
    UP_QUEUED,
    UP_REVIEW,
    UP_SENDING,
    Order,
    UpstreamEvent,
)
from app.providers.models import Provider
from app.settings import Settings


async def move_stale_sending_to_review(db: Database, settings: Settings) -> list[int]:
    """A `sending` attempt older than the timeout has an unknown outcome (the worker died
    mid-call): never resend it blindly. One that carried our request id is sent again
    with it instead (safe: see the module's docstring); the ids moved to review."""
    cutoff = utcnow() - timedelta(seconds=settings.sending_stale_seconds)
    async with db.transaction() as session:
        requeued = list(
            await session.scalars(
                update(Order)
                .where(
                    Order.upstream_state == UP_SENDING,
                    Order.sending_since < cutoff,
                    Order.upstream_request_id.is_not(None),
                    Order.provider_id.in_(select(Provider.id).where(Provider.cap_request_id)),
                )
                .values(
                    upstream_state=UP_QUEUED,
                    sending_since=None,
                    next_attempt_at=utcnow(),
                    last_error="worker stopped during the call: sent again with its request id",
                )
                .returning(Order.id)
            )
        )
        for order_id in requeued:
            session.add(
                UpstreamEvent(order_id=order_id, action="add", outcome="stale_to_retry", detail={})
            )
        ids = list(
            await session.scalars(
                update(Order)
                .where(Order.upstream_state == UP_SENDING, Order.sending_since < cutoff)
                .values(upstream_state=UP_REVIEW, last_error="worker stopped during the call")
                .returning(Order.id)
            )
        )
        for order_id in ids:
            session.add(
                UpstreamEvent(order_id=order_id, action="add", outcome="stale_to_review", detail={})
            )
    for order_id in ids:
        log.warning(
            "send outcome unknown (worker stopped during the call), moved to review",
            extra={"order_id": order_id},
        )
    return ids


async def requeue_reviews_with_request_id(db: Database) -> list[int]:
    """Orders in review whose attempts carried our request id, at a provider that takes
    request ids, are not an operator's question: sending again with the same id answers
    the provider's order (or places it once). Back to the queue, due now; their ids.
    Orders flagged with an anomaly stay for the operator."""
    capable = select(Provider.id).where(Provider.cap_request_id)
    async with db.transaction() as session:
        ids = list(
            await session.scalars(
                update(Order)
                .where(
                    Order.upstream_state == UP_REVIEW,
                    Order.status == PENDING,
                    Order.provider_order_id.is_(None),
                    Order.upstream_request_id.is_not(None),
                    Order.provider_id.in_(capable),
                    # Held for an anomaly (an upstream id given twice): the same request
                    # id would only answer it again. The operator decides.
                    Order.anomaly.is_(None),
                )
                .values(
                    upstream_state=UP_QUEUED,
                    next_attempt_at=utcnow(),
                    last_error="outcome unknown: sent again with its request id",
                )
                .returning(Order.id)
            )
        )
        for order_id in ids:
            session.add(
                UpstreamEvent(order_id=order_id, action="add", outcome="review_to_retry", detail={})
            )
    return ids


async def due_orders(db: Database, limit: int = 1000) -> list[int]:
    async with db.session() as session:
        return list(
            await session.scalars(
                select(Order.id)
                .where(Order.upstream_state == UP_QUEUED, Order.next_attempt_at <= utcnow())
                .order_by(Order.next_attempt_at)
                .limit(limit)
            )
        )
