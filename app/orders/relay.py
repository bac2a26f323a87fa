"""Relaying orders upstream without ever sending one twice by accident.

Intent is recorded and committed before the HTTP call (`queued → sending`), the outcome
after it. A request that surely never left is retried later; one whose outcome is unknown
goes to the review queue; a crash in between leaves `sending`, which the sweeper moves to
review. Upstream calls never run inside a database transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Service
from app.currencies.service import NoConversionRate, conversion_rate
from app.db import Database, utcnow
from app.metrics import PROVIDER_ALERTS, RELAY_OUTCOMES
from app.orders.models import (
    CANCELED,
    IN_PROGRESS,
    PENDING,
    UP_QUEUED,
    UP_REJECTED,
    UP_REVIEW,
    UP_SENDING,
    UP_SENT,
    Order,
    UpstreamEvent,
)
from app.orders.service import refresh_parent, refund
from app.orders.types import cost_for, handler_for
from app.providers.client import (
    ProviderError,
    ProviderPermanent,
    ProviderTransient,
    ProviderUnknownOutcome,
)
from app.providers.models import Provider
from app.providers.service import client_for
from app.settings import Settings

log = logging.getLogger(__name__)

FUNDS_ERROR = "not enough funds"


@dataclass(frozen=True)
class RelayOutcome:
    order_id: int
    outcome: str  # sent, retry, review, rejected, gave_up, skipped
    cancel_due: bool = False


def backoff(settings: Settings, attempts: int) -> timedelta:
    seconds = settings.relay_retry_base_seconds * (2 ** max(0, attempts - 1))
    return timedelta(seconds=min(seconds, 3600))


def upstream_fields(order: Order) -> dict[str, str]:
    fields = {"service": order.provider_service_id or "", "link": order.link}
    fields.update(handler_for(order.type).upstream_fields(order.params))
    if order.link == "":
        fields.pop("link")
    return fields


async def _claim(db: Database, order_id: int) -> tuple[Order, Provider] | None:
    """queued → sending, committed before anything leaves."""
    async with db.transaction() as session:
        order = await session.scalar(
            update(Order)
            .where(
                Order.id == order_id,
                Order.upstream_state == UP_QUEUED,
                Order.status == PENDING,
                Order.next_attempt_at <= utcnow(),
            )
            .values(
                upstream_state=UP_SENDING,
                sending_since=utcnow(),
                attempts=Order.attempts + 1,
            )
            .returning(Order)
        )
        if order is None:
            return None
        provider = await session.get(Provider, order.provider_id) if order.provider_id else None
        if provider is None or not provider.enabled:
            # Nothing can leave: put it back to wait for the operator to fix the mapping.
            await session.execute(
                update(Order)
                .where(Order.id == order_id)
                .values(
                    upstream_state=UP_QUEUED,
                    sending_since=None,
                    next_attempt_at=utcnow() + timedelta(minutes=5),
                    last_error="provider missing or disabled",
                )
            )
            return None
        session.add(
            UpstreamEvent(
                order_id=order.id,
                action="add",
                outcome="attempt",
                detail={"attempt": order.attempts, "provider_id": provider.id},
            )
        )
        return order, provider


async def relay_order(
    db: Database, http: httpx.AsyncClient, settings: Settings, order_id: int
) -> RelayOutcome:
    claimed = await _claim(db, order_id)
    if claimed is None:
        return RelayOutcome(order_id, "skipped")
    order, provider = claimed
    client = client_for(provider, settings.secret_key, http)
    try:
        provider_order_id = await client.add(upstream_fields(order))
    except ProviderError as exc:
        return await _record_failure(db, settings, order, exc)
    async with db.transaction() as session:
        changed = await session.scalar(
            update(Order)
            .where(
                Order.id == order.id,
                Order.upstream_state.in_((UP_SENDING, UP_REVIEW)),
                Order.provider_order_id.is_(None),
            )
            .values(
                upstream_state=UP_SENT,
                provider_order_id=provider_order_id,
                status=IN_PROGRESS,
                sending_since=None,
                last_error=None,
                **await upstream_cost(session, settings, order, provider),
            )
            .returning(Order.cancel_state)
        )
        session.add(
            UpstreamEvent(
                order_id=order.id,
                action="add",
                outcome="sent",
                detail={"provider_order_id": provider_order_id},
            )
        )
        if order.parent_id is not None:
            await refresh_parent(session, order.parent_id)
    RELAY_OUTCOMES.labels("sent").inc()
    return RelayOutcome(order.id, "sent", cancel_due=changed == "requested")


async def upstream_cost(
    session: AsyncSession, settings: Settings, order: Order, provider: Provider
) -> dict[str, object]:
    """What the provider bills for the order and the conversion rate of the day."""
    provider_rate = await session.scalar(
        select(Service.provider_rate).where(Service.id == order.service_id)
    )
    if provider_rate is None:
        return {}
    try:
        fx_rate: Decimal | None = await conversion_rate(session, settings, provider.currency)
    except NoConversionRate:
        fx_rate = None  # the margin report lists such orders as unpriced
    return {
        "provider_charge": cost_for(order.type, provider_rate, order.quantity),
        "provider_currency": provider.currency,
        "fx_rate": fx_rate,
    }


async def _record_failure(
    db: Database, settings: Settings, order: Order, exc: ProviderError
) -> RelayOutcome:
    kind = type(exc).__name__
    async with db.transaction() as session:
        session.add(
            UpstreamEvent(
                order_id=order.id,
                action="add",
                outcome=kind,
                detail={"message": exc.message[:500]},
            )
        )
        if isinstance(exc, ProviderUnknownOutcome):
            # It may have been created upstream: a resend could double it. An operator decides.
            await _set_state(session, order.id, UP_REVIEW, exc.message)
            RELAY_OUTCOMES.labels("review").inc()
            log.warning("order outcome unknown, moved to review", extra={"order_id": order.id})
            return RelayOutcome(order.id, "review")
        if isinstance(exc, ProviderPermanent):
            await _give_up(session, order.id, UP_REJECTED, exc.message)
            RELAY_OUTCOMES.labels("rejected").inc()
            return RelayOutcome(order.id, "rejected")
        if isinstance(exc, ProviderTransient) and FUNDS_ERROR in exc.message.lower():
            PROVIDER_ALERTS.labels(str(order.provider_id), "insufficient_funds").inc()
            log.error(
                "provider balance too low to relay orders",
                extra={"provider_id": order.provider_id, "order_id": order.id},
            )
        if order.attempts >= settings.relay_max_attempts:
            await _give_up(session, order.id, UP_REJECTED, f"gave up: {exc.message}")
            RELAY_OUTCOMES.labels("gave_up").inc()
            return RelayOutcome(order.id, "gave_up")
        # Surely not created upstream (not sent, or a transient refusal): retry later.
        await session.execute(
            update(Order)
            .where(Order.id == order.id, Order.upstream_state == UP_SENDING)
            .values(
                upstream_state=UP_QUEUED,
                sending_since=None,
                next_attempt_at=utcnow() + backoff(settings, order.attempts),
                last_error=exc.message[:1000],
            )
        )
    RELAY_OUTCOMES.labels("retry").inc()
    return RelayOutcome(order.id, "retry")


async def _set_state(session: AsyncSession, order_id: int, state: str, error: str) -> None:
    await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.upstream_state == UP_SENDING)
        .values(upstream_state=state, last_error=error[:1000])
    )


async def _give_up(session: AsyncSession, order_id: int, state: str, error: str) -> None:
    """The order cannot be placed upstream: Canceled with a full refund."""
    order = await session.scalar(
        update(Order)
        .where(Order.id == order_id, Order.upstream_state.in_((UP_SENDING, UP_REVIEW)))
        .values(
            upstream_state=state,
            status=CANCELED,
            remains=Order.quantity,
            finished_at=utcnow(),
            sending_since=None,
            last_error=error[:1000],
        )
        .returning(Order)
    )
    if order is not None:
        await refund(session, order_id=order.id, amount=order.charge, reason="Not placed upstream")
        if order.parent_id is not None:
            await refresh_parent(session, order.parent_id)


async def move_stale_sending_to_review(db: Database, settings: Settings) -> list[int]:
    """A `sending` attempt older than the timeout has an unknown outcome (the worker died
    mid-call): never resend it blindly."""
    cutoff = utcnow() - timedelta(seconds=settings.sending_stale_seconds)
    async with db.transaction() as session:
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


# Review queue actions (operator).


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
    order = await session.get(Order, order_id)
    provider = (
        await session.get(Provider, order.provider_id) if order and order.provider_id else None
    )
    cost = await upstream_cost(session, settings, order, provider) if order and provider else {}
    return (
        await session.scalar(
            update(Order)
            .where(Order.id == order_id, Order.upstream_state == UP_REVIEW)
            .values(
                upstream_state=UP_SENT,
                provider_order_id=provider_order_id,
                status=IN_PROGRESS,
                sending_since=None,
                **cost,
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
    await _give_up(session, order_id, UP_REJECTED, "canceled by operator from review")
    return True


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
