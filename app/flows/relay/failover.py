"""Failover to a service's backup providers, and the states an order leaves `sending`
for when it is retried later or given up (Canceled with a full refund)."""

from __future__ import annotations

from sqlalchemy import (
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Service, ServiceBackup
from app.db import utcnow
from app.flows.relay.common import FUNDS_ERROR, Claim, backoff, log
from app.metrics import RELAY_OUTCOMES
from app.orders.models import (
    CANCELED,
    UP_QUEUED,
    UP_REVIEW,
    UP_SENDING,
    Order,
    UpstreamEvent,
)
from app.orders.service import lock_owners, refresh_parent, refund
from app.providers.client import (
    ProviderError,
    ProviderPermanent,
    ProviderTransient,
)
from app.providers.models import Provider
from app.settings import Settings

# Failover ----------------------------------------------------------------------------------
#
# A service may list backup providers (catalog.ServiceBackup, in order). An order the
# provider refused for good *before accepting it* goes to the next one in the chain
# (the service's own provider, then its backups), never back to one already passed: the
# order row's provider_id/provider_service_id move forward, so each provider of the chain
# receives the order at most once by failover, and the order's provider_id is the one
# that took it (the margin report and the status sync follow it). An unknown outcome
# (timeout after sending, garbage answer) never fails over: it may have been created.

# Refusals about the order itself, which no other provider would accept either.
ORDER_ERRORS = ("incorrect link",)


def fails_over(exc: ProviderError) -> bool:
    """A definitive refusal, before the provider accepted the order."""
    message = exc.message.lower()
    if isinstance(exc, ProviderPermanent):
        return not any(marker in message for marker in ORDER_ERRORS)
    return isinstance(exc, ProviderTransient) and FUNDS_ERROR in message


async def next_provider(session: AsyncSession, order: Claim) -> tuple[int, str] | None:
    """The provider (and its service id) after the order's current one in the chain of
    its service, skipping disabled providers; None at the end of the chain."""
    service = await session.get(Service, order.service_id)
    if service is None or service.provider_id is None or service.provider_service_id is None:
        return None
    backups = await session.scalars(
        select(ServiceBackup)
        .where(ServiceBackup.service_id == order.service_id)
        .order_by(ServiceBackup.position)
    )
    chain = [(service.provider_id, service.provider_service_id)]
    chain += [(b.provider_id, b.provider_service_id) for b in backups]
    current = (order.provider_id, order.provider_service_id)
    if current not in chain:
        return None  # mapped elsewhere since: the operator's mapping decides, not failover
    for provider_id, provider_service_id in chain[chain.index(current) + 1 :]:
        provider = await session.get(Provider, provider_id)
        if provider is not None and provider.enabled:
            return provider_id, provider_service_id
    return None


async def fail_over(session: AsyncSession, order: Claim, exc: ProviderError) -> bool:
    """Queue the order for the next provider of its chain (due now); False if none."""
    target = await next_provider(session, order)
    if target is None:
        return False
    provider_id, provider_service_id = target
    moved = await session.scalar(
        update(Order)
        .where(
            Order.id == order.id,
            Order.upstream_state == UP_SENDING,
            Order.provider_id == order.provider_id,
        )
        .values(
            provider_id=provider_id,
            provider_service_id=provider_service_id,
            upstream_state=UP_QUEUED,
            sending_since=None,
            next_attempt_at=utcnow(),
            last_error=f"provider {order.provider_id} refused: {exc.message}"[:1000],
        )
        .returning(Order.id)
    )
    if moved is None:
        return False
    session.add(
        UpstreamEvent(
            order_id=order.id,
            action="add",
            outcome="failover",
            detail={
                "from_provider_id": order.provider_id,
                "to_provider_id": provider_id,
                "provider_service_id": provider_service_id,
                "message": exc.message[:500],
            },
        )
    )
    RELAY_OUTCOMES.labels("failover").inc()
    log.warning(
        "provider refused the order: failed over to the next provider",
        extra={"order_id": order.id, "from": order.provider_id, "to": provider_id},
    )
    return True


async def _requeue(
    session: AsyncSession,
    order_id: int,
    state: str,
    settings: Settings,
    attempts: int,
    error: str,
) -> None:
    """Back to the queue from `state`, due after the backoff of `attempts`."""
    await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.upstream_state == state)
        .values(
            upstream_state=UP_QUEUED,
            sending_since=None,
            next_attempt_at=utcnow() + backoff(settings, attempts),
            last_error=error[:1000],
        )
    )


async def _set_state(session: AsyncSession, order_id: int, state: str, error: str) -> None:
    await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.upstream_state == UP_SENDING)
        .values(upstream_state=state, last_error=error[:1000])
    )


async def give_up(session: AsyncSession, order_id: int, state: str, error: str) -> None:
    """The order cannot be placed upstream: Canceled with a full refund."""
    await lock_owners(session, [order_id])  # its owner, then the order (the lock order)
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
