"""Status sync: ask each provider about our active orders in batches of 100 and apply
what changed (refunds included, each exactly once)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.metrics import PROVIDER_ERRORS, STATUS_UPDATES
from app.orders.models import ACTIVE_STATUSES, PENDING, STATUSES, UP_SENT, Order, UpstreamEvent
from app.orders.service import StatusReport, apply_status
from app.providers.client import ProviderClient, ProviderError, ProviderOrderStatus
from app.providers.models import Provider
from app.providers.service import client_for
from app.settings import Settings

log = logging.getLogger(__name__)

BATCH = 100


@dataclass
class SyncResult:
    checked: int = 0
    changed: int = 0
    errors: int = 0


def report_from(status: ProviderOrderStatus) -> StatusReport | None:
    if status.status not in STATUSES:
        return None
    # A provider's "Pending" is our "In progress": the order is ours to have sent.
    return StatusReport(
        status=status.status if status.status != PENDING else "In progress",
        start_count=status.start_count,
        remains=status.remains,
    )


def _differs(row: tuple[int, str, int | None, int | None], report: StatusReport) -> bool:
    _, status, start_count, remains = row
    return (
        report.status != status
        or (report.start_count is not None and report.start_count != start_count)
        or (report.remains is not None and report.remains != remains)
    )


async def _apply_batch(
    session: AsyncSession,
    rows: dict[str, tuple[int, str, int | None, int | None]],
    answers: dict[str, ProviderOrderStatus | ProviderError],
    result: SyncResult,
) -> None:
    for provider_order_id, answer in answers.items():
        row = rows.get(provider_order_id)
        if row is None:
            continue
        if isinstance(answer, ProviderError):
            result.errors += 1
            session.add(
                UpstreamEvent(
                    order_id=row[0],
                    action="status",
                    outcome="error",
                    detail={"message": answer.message[:500]},
                )
            )
            continue
        report = report_from(answer)
        posts = answer.extra.get("posts")
        if posts is not None and str(posts).isdigit():
            await record_posts(session, row[0], int(str(posts)))
        if report is None or not _differs(row, report):
            continue
        if await apply_status(session, row[0], report, source="provider"):
            result.changed += 1


async def record_posts(session: AsyncSession, order_id: int, posts: int) -> None:
    """Subscriptions: how many posts the provider has served, shown by `status`."""
    await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.type == "Subscriptions")
        .values(params=Order.params.op("||")(func.jsonb_build_object("posts_done", posts)))
    )


async def sync_provider(
    db: Database, client: ProviderClient, provider_id: int, *, concurrency: int = 4
) -> SyncResult:
    """Walk the provider's active orders by id, 100 per request, a few requests in flight."""
    result = SyncResult()
    last_id = 0
    semaphore = asyncio.Semaphore(concurrency)
    tasks: list[asyncio.Task[None]] = []

    async def one_batch(rows: dict[str, tuple[int, str, int | None, int | None]]) -> None:
        async with semaphore:
            try:
                answers = await client.statuses(list(rows))
            except ProviderError as exc:
                result.errors += len(rows)
                PROVIDER_ERRORS.labels(str(provider_id), type(exc).__name__).inc()
                log.warning("status sync batch failed", extra={"provider_id": provider_id})
                return
            try:
                async with db.transaction() as session:
                    await _apply_batch(session, rows, answers, result)
            except (DBAPIError, OSError):
                # The next sync applies it again: every update is idempotent.
                result.errors += len(rows)
                log.warning("status sync batch not applied", extra={"provider_id": provider_id})

    while True:
        async with db.session() as session:
            batch = (
                await session.execute(
                    select(
                        Order.id,
                        Order.provider_order_id,
                        Order.status,
                        Order.start_count,
                        Order.remains,
                    )
                    .where(
                        Order.provider_id == provider_id,
                        Order.upstream_state == UP_SENT,
                        Order.status.in_(ACTIVE_STATUSES),
                        Order.id > last_id,
                    )
                    .order_by(Order.id)
                    .limit(BATCH)
                )
            ).all()
        if not batch:
            break
        last_id = batch[-1][0]
        rows = {str(r[1]): (r[0], r[2], r[3], r[4]) for r in batch}
        result.checked += len(rows)
        while len(tasks) >= concurrency * 2:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            tasks = [t for t in tasks if t not in done]
        tasks.append(asyncio.create_task(one_batch(rows)))
    if tasks:
        await asyncio.gather(*tasks)
    STATUS_UPDATES.inc(result.changed)
    return result


async def sync_all(db: Database, http: httpx.AsyncClient, settings: Settings) -> SyncResult:
    total = SyncResult()
    async with db.session() as session:
        providers = list(await session.scalars(select(Provider).where(Provider.enabled)))
    for provider in providers:
        client = client_for(provider, settings.secret_key, http)
        part = await sync_provider(db, client, provider.id)
        total.checked += part.checked
        total.changed += part.changed
        total.errors += part.errors
    return total
