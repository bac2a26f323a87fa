"""A service's average completion time, as panels show it: the mean time from placing to
completion of its last SAMPLE Completed orders (top-level ones, finished within WINDOW).

It is measured by a cron and kept on the service row (`services.average_seconds`), written
only when it changed: the catalog's change feed then carries it to every reader (the
services page, the order form, API v2 `services`), and no page computes it per request.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog.models import Service
from app.orders.models import COMPLETED, Order

SAMPLE = 10
WINDOW = timedelta(days=30)


async def measure(session: AsyncSession, now: datetime) -> dict[int, int]:
    """Service id → the average seconds of its last SAMPLE completed orders."""
    took = func.extract("epoch", Order.finished_at - Order.created_at)
    ranked = (
        select(
            Order.service_id.label("service_id"),
            took.label("seconds"),
            func.row_number()
            .over(partition_by=Order.service_id, order_by=Order.finished_at.desc())
            .label("n"),
        )
        .where(
            Order.status == COMPLETED,
            Order.parent_id.is_(None),
            Order.finished_at.is_not(None),
            Order.created_at > now - WINDOW,
        )
        .subquery()
    )
    rows = await session.execute(
        select(ranked.c.service_id, func.avg(ranked.c.seconds))
        .where(ranked.c.n <= SAMPLE)
        .group_by(ranked.c.service_id)
    )
    return {service_id: max(0, round(seconds)) for service_id, seconds in rows}


async def refresh(session: AsyncSession, now: datetime) -> int:
    """Write each measured service's average where it changed; how many changed. A service
    without recent completed orders keeps the last average it had."""
    changed = 0
    for service_id, seconds in sorted((await measure(session, now)).items()):
        done = await session.execute(
            update(Service)
            .where(Service.id == service_id, Service.average_seconds.is_distinct_from(seconds))
            .values(average_seconds=seconds)
            .returning(Service.id)
        )
        changed += len(done.all())
    return changed
