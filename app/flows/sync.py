"""Status sync: ask each provider about our active orders in batches of 100 and apply
what changed (refunds included, each exactly once)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx
from sqlalchemy import insert, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.metrics import PROVIDER_ERRORS, STATUS_UPDATES
from app.orders.models import (
    ACTIVE_STATUSES,
    COMPLETED,
    IN_PROGRESS,
    PENDING,
    PROCESSING,
    STATUSES,
    UP_SENT,
    Order,
    UpstreamEvent,
)
from app.orders.service import StatusReport, apply_status, refresh_parent
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


# Reports that move no money: applied to a whole page in one statement.
PROGRESS_STATUSES = (IN_PROGRESS, PROCESSING, COMPLETED)

# The bulk twin of `apply_status` for PROGRESS_STATUSES: the same values, the same
# guards (only active orders move; a drip-feed parent follows its runs), rows locked in id
# order (concurrent pages cannot deadlock), one upstream event per order that changed.
PROGRESS_SQL = text(
    """
    WITH v AS (
        SELECT * FROM unnest(
            CAST(:ids AS bigint[]), CAST(:statuses AS text[]),
            CAST(:start_counts AS bigint[]), CAST(:remains AS bigint[])
        ) AS v(id, status, start_count, remains)
    ), locked AS (
        SELECT o.id FROM orders AS o
        WHERE o.id = ANY(CAST(:ids AS bigint[]))
            AND o.status IN ('Pending', 'In progress', 'Processing')
            AND o.upstream_state <> 'dripfeed'
        ORDER BY o.id
        FOR UPDATE
    ), changed AS (
        UPDATE orders AS o SET
            status = v.status,
            start_count = CASE WHEN v.start_count >= 0 THEN v.start_count
                ELSE o.start_count END,
            remains = CASE WHEN v.status = 'Completed' THEN 0
                WHEN v.remains IS NULL THEN o.remains
                ELSE LEAST(GREATEST(v.remains, 0), o.quantity) END,
            finished_at = CASE WHEN v.status = 'Completed' THEN now()
                ELSE o.finished_at END,
            updated_at = now()
        FROM v, locked
        WHERE o.id = v.id AND locked.id = v.id
            AND o.status IN ('Pending', 'In progress', 'Processing')
            AND o.upstream_state <> 'dripfeed'
            AND (v.status <> o.status OR v.status = 'Completed'
                OR v.start_count >= 0 OR v.remains IS NOT NULL)
        RETURNING o.id, o.parent_id, v.status, v.start_count, v.remains
    ), events AS (
        INSERT INTO upstream_events (order_id, action, outcome, detail, created_at)
        SELECT id, 'status', status,
            jsonb_build_object(
                'source', 'provider', 'start_count', start_count, 'remains', remains
            ),
            now()
        FROM changed
    )
    SELECT id, parent_id FROM changed
    """
)

# Subscriptions: how many posts the provider has served, shown by `status`.
POSTS_SQL = text(
    """
    UPDATE orders AS o SET
        params = o.params || jsonb_build_object('posts_done', v.posts),
        updated_at = now()
    FROM unnest(CAST(:ids AS bigint[]), CAST(:posts AS bigint[])) AS v(id, posts)
    WHERE o.id = v.id AND o.type = 'Subscriptions'
    """
)


async def _apply_batch(
    session: AsyncSession,
    rows: dict[str, tuple[int, str, int | None, int | None]],
    answers: dict[str, ProviderOrderStatus | ProviderError],
    result: SyncResult,
) -> None:
    errors: list[tuple[int, str]] = []
    posts: list[tuple[int, int]] = []
    progress: list[tuple[int, StatusReport]] = []
    refunding: list[tuple[int, StatusReport]] = []
    for provider_order_id, answer in answers.items():
        row = rows.get(provider_order_id)
        if row is None:
            continue
        if isinstance(answer, ProviderError):
            errors.append((row[0], answer.message[:500]))
            continue
        served = answer.extra.get("posts")
        if served is not None and str(served).isdigit():
            posts.append((row[0], int(str(served))))
        report = report_from(answer)
        if report is None or not _differs(row, report):
            continue
        if report.status in PROGRESS_STATUSES:
            progress.append((row[0], report))
        else:
            refunding.append((row[0], report))
    if errors:
        result.errors += len(errors)
        await session.execute(
            insert(UpstreamEvent),
            [
                {
                    "order_id": order_id,
                    "action": "status",
                    "outcome": "error",
                    "detail": {"message": message},
                }
                for order_id, message in errors
            ],
        )
    if posts:
        await session.execute(
            POSTS_SQL, {"ids": [i for i, _ in posts], "posts": [n for _, n in posts]}
        )
    if progress:
        progress.sort(key=lambda item: item[0])
        changed = (
            await session.execute(
                PROGRESS_SQL,
                {
                    "ids": [order_id for order_id, _ in progress],
                    "statuses": [report.status for _, report in progress],
                    "start_counts": [report.start_count for _, report in progress],
                    "remains": [report.remains for _, report in progress],
                },
            )
        ).all()
        result.changed += len(changed)
        for parent_id in sorted({row.parent_id for row in changed if row.parent_id is not None}):
            await refresh_parent(session, parent_id)
    # Partial and Canceled refund: one by one, through the exact-once path.
    for order_id, report in sorted(refunding, key=lambda item: item[0]):
        if await apply_status(session, order_id, report, source="provider"):
            result.changed += 1


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
                log.warning(
                    "status sync batch failed",
                    extra={
                        "provider_id": provider_id,
                        "orders": len(rows),
                        "error": f"{type(exc).__name__}: {exc}",
                    },
                )
                return
            try:
                async with db.transaction() as session:
                    await _apply_batch(session, rows, answers, result)
            except (DBAPIError, OSError) as exc:
                # The next sync applies it again: every update is idempotent.
                result.errors += len(rows)
                log.warning(
                    "status sync batch not applied",
                    extra={
                        "provider_id": provider_id,
                        "order_ids": sorted(row[0] for row in rows.values()),
                        "error": f"{type(exc).__name__}: {str(exc).splitlines()[0]}",
                    },
                )

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
