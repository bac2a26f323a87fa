"""Relaying refills upstream and following their status.

A refill request is safe to repeat (a provider keeps at most one active refill per
order), so unlike orders an unknown outcome is simply retried.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlalchemy import select, update

from app.db import Database, utcnow
from app.orders.models import Order, UpstreamEvent
from app.providers.client import ProviderError, ProviderPermanent
from app.providers.models import Provider
from app.providers.service import client_for
from app.refills.models import R_REJECTED, REFILL_ACTIVE, REFILL_STATUSES, Refill
from app.settings import Settings


async def relay_refill(
    db: Database, http: httpx.AsyncClient, settings: Settings, refill_id: int
) -> str:
    async with db.transaction() as session:
        claimed = await session.scalar(
            update(Refill)
            .where(Refill.id == refill_id, Refill.upstream_state == "queued")
            .values(upstream_state="sending", attempts=Refill.attempts + 1)
            .returning(Refill)
        )
        if claimed is None:
            return "skipped"
        row = (
            await session.execute(
                select(Order.provider_order_id, Provider)
                .join(Provider, Provider.id == Order.provider_id)
                .where(Order.id == claimed.order_id)
            )
        ).first()
    provider_order_id = row[0] if row is not None else None
    if row is None or provider_order_id is None:
        return "skipped"
    provider = row[1]
    client = client_for(provider, settings.secret_key, http)
    try:
        provider_refill_id = await client.refill(provider_order_id)
    except ProviderError as exc:
        permanent = isinstance(exc, ProviderPermanent)
        give_up = permanent or claimed.attempts >= settings.relay_max_attempts
        async with db.transaction() as session:
            await session.execute(
                update(Refill)
                .where(Refill.id == refill_id)
                .values(
                    upstream_state="rejected" if give_up else "queued",
                    status=R_REJECTED if give_up else claimed.status,
                    next_attempt_at=utcnow()
                    + timedelta(seconds=settings.relay_retry_base_seconds * claimed.attempts),
                    last_error=exc.message[:1000],
                )
            )
            session.add(
                UpstreamEvent(
                    order_id=claimed.order_id,
                    refill_id=refill_id,
                    action="refill",
                    outcome=type(exc).__name__,
                    detail={"message": exc.message[:500]},
                )
            )
        return "rejected" if give_up else "retry"
    async with db.transaction() as session:
        await session.execute(
            update(Refill)
            .where(Refill.id == refill_id)
            .values(upstream_state="sent", provider_refill_id=provider_refill_id, last_error=None)
        )
        session.add(
            UpstreamEvent(
                order_id=claimed.order_id,
                refill_id=refill_id,
                action="refill",
                outcome="sent",
                detail={"provider_refill_id": provider_refill_id},
            )
        )
    return "sent"


async def sync_refills(db: Database, http: httpx.AsyncClient, settings: Settings) -> int:
    """Follow sent, still active refills; returns how many changed status."""
    changed = 0
    async with db.session() as session:
        rows = (
            await session.execute(
                select(Refill.id, Refill.provider_refill_id, Refill.status, Provider)
                .join(Order, Order.id == Refill.order_id)
                .join(Provider, Provider.id == Order.provider_id)
                .where(Refill.upstream_state == "sent", Refill.status.in_(REFILL_ACTIVE))
                .order_by(Refill.id)
            )
        ).all()
    by_provider: dict[int, tuple[Provider, list[tuple[int, str, str]]]] = {}
    for refill_id, provider_refill_id, status, provider in rows:
        if provider_refill_id is None:
            continue
        by_provider.setdefault(provider.id, (provider, []))[1].append(
            (refill_id, provider_refill_id, status)
        )
    for provider, items in by_provider.values():
        client = client_for(provider, settings.secret_key, http)
        try:
            answers = await client.refill_statuses([i[1] for i in items])
        except ProviderError:
            continue
        async with db.transaction() as session:
            for refill_id, provider_refill_id, status in items:
                answer = answers.get(provider_refill_id)
                if not isinstance(answer, str) or answer not in REFILL_STATUSES:
                    continue
                if answer == status:
                    continue
                await session.execute(
                    update(Refill)
                    .where(Refill.id == refill_id, Refill.status.in_(REFILL_ACTIVE))
                    .values(status=answer)
                )
                changed += 1
    return changed


async def due_refills(db: Database, limit: int = 1000) -> list[int]:
    async with db.session() as session:
        return list(
            await session.scalars(
                select(Refill.id)
                .where(Refill.upstream_state == "queued", Refill.next_attempt_at <= utcnow())
                .limit(limit)
            )
        )


async def stale_refills_to_queue(db: Database, settings: Settings) -> int:
    cutoff = utcnow() - timedelta(seconds=settings.sending_stale_seconds)
    async with db.transaction() as session:
        ids = list(
            await session.scalars(
                update(Refill)
                .where(Refill.upstream_state == "sending", Refill.updated_at < cutoff)
                .values(upstream_state="queued", next_attempt_at=utcnow())
                .returning(Refill.id)
            )
        )
    return len(ids)
