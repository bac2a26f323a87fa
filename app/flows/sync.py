"""Status sync: ask each provider about our active orders in batches of 100 and apply
what changed (refunds included, each exactly once).

One order never stalls the others. Every number a provider sends is bounded by the client
(app/providers/client.py); a report that still cannot be applied (a number out of range,
a status we cannot act on, a Partial without readable remains) is an anomaly: it is
flagged on its order (`anomaly`, `anomaly_at`, shown by the operator API), recorded in its
upstream history, counted (`smm_provider_anomalies_total{provider_id,kind}`) and alerted
(app/orders/anomalies.py), and the order is skipped: it stays active, and a later
readable report applies. A Partial without remains is never a final refund of 0. Each
statement of a batch runs in its own savepoint: if one fails, only its own orders are
skipped (a failed bulk progress statement is retried order by order), and the log line
says why and for which orders.

Lock order (docs/architecture.md): a batch's transaction moves no money and locks only
orders, by ascending id. What moves money (a Partial or Canceled report's refund) and what
locks a drip-feed parent after its runs are applied once the batch has committed, each
order in its own short transaction that locks its owner first, then the order. No
transaction locks several users, and none spans a call to the provider.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple, TypeVar

import httpx
from sqlalchemy import Row, insert, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.metrics import PROVIDER_ERRORS, STATUS_UPDATES
from app.orders import anomalies
from app.orders.anomalies import AnomalyJson
from app.orders.models import (
    ACTIVE_STATUSES,
    COMPLETED,
    IN_PROGRESS,
    PARTIAL,
    PENDING,
    PROCESSING,
    STATUSES,
    UP_SENT,
    Order,
    UpstreamEvent,
)
from app.orders.service import StatusReport, apply_status, refresh_parent
from app.orders.sql import POSTS_SQL, PROGRESS_SQL, progress_params
from app.providers.client import (
    UNREADABLE_REMAINS,
    Anomaly,
    ProviderClient,
    ProviderError,
    ProviderOrderStatus,
    to_int,
)
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
    anomalies: int = 0  # reports flagged on their order and not applied


def anomalies_of(status: ProviderOrderStatus) -> list[AnomalyJson]:
    """Why a report cannot be applied (none: it can). The client names them; a report
    made otherwise (a status we cannot act on, a Partial without remains) is held to the
    same rules."""
    found = [a.as_json() for a in status.anomalies]
    if found:
        return found
    if status.status not in STATUSES:
        return [Anomaly("unknown_status", "status", status.status).as_json()]
    if status.status == PARTIAL and status.remains is None:
        return [Anomaly(UNREADABLE_REMAINS, "remains", "null").as_json()]
    return []


def report_from(status: ProviderOrderStatus) -> StatusReport | None:
    """What a provider's report says in our terms; None when it is anomalous (a number out
    of range, a status we cannot act on, a Partial without readable remains): such a
    report is flagged and never applied."""
    if anomalies_of(status):
        return None
    # A provider's "Pending" is our "In progress": the order is ours to have sent.
    return StatusReport(
        status=status.status if status.status != PENDING else IN_PROGRESS,
        start_count=status.start_count,
        remains=status.remains,
    )


class Tracked(NamedTuple):
    """An active order as the sync read it."""

    id: int
    status: str
    start_count: int | None
    remains: int | None
    quantity: int | None = None  # None: not read, reported remains compared as they are


def _differs(row: Tracked, report: StatusReport) -> bool:
    """Whether applying the report would change the order, by the rules of apply_status
    (over-delivery is 0 remains, remains never exceed the quantity, a negative start
    count is ignored), so that a report applied once is not applied again each cycle."""
    remains = report.remains
    if remains is not None:
        remains = max(remains, 0)
        if row.quantity is not None:
            remains = min(remains, row.quantity)
    return (
        report.status != row.status
        or (
            report.start_count is not None
            and report.start_count >= 0
            and report.start_count != row.start_count
        )
        or (remains is not None and remains != row.remains)
    )


# Reports that move no money: applied to a whole page in one statement (PROGRESS_SQL).
PROGRESS_STATUSES = (IN_PROGRESS, PROCESSING, COMPLETED)

T = TypeVar("T")


async def _isolated(
    session: AsyncSession,
    what: str,
    order_ids: Sequence[int],
    provider_id: int | None,
    statement: Callable[[], Awaitable[T]],
) -> T | None:
    """Run one statement in its own savepoint: if it fails, only its own work is undone
    and the rest of the batch goes on. Logs why, with the orders concerned."""
    try:
        async with session.begin_nested():
            return await statement()
    except DBAPIError as exc:
        reason = str(exc.orig if exc.orig is not None else exc).splitlines()[0][:300]
        log.warning(
            "status sync: %s not applied for orders %s: %s",
            what,
            ",".join(map(str, order_ids[:20])),
            reason,
            extra={"provider_id": provider_id, "order_ids": list(order_ids), "reason": reason},
        )
        return None


async def _flag_anomalies(
    session: AsyncSession,
    anomalous: Sequence[tuple[int, ProviderOrderStatus]],
    provider_id: int | None,
) -> None:
    """Record each anomalous report on its order (the flag, an upstream event, the metric,
    the alert), once for as long as the provider keeps sending the same one; each in its
    own savepoint."""
    for order_id, answer in anomalous:
        flag = partial(
            anomalies.flag,
            session,
            order_id,
            anomalies_of(answer),
            provider_id=provider_id,
            action="status",
            detail={"source": "provider", "status": answer.status},
        )
        await _isolated(session, "anomaly flag", [order_id], provider_id, flag)


@dataclass
class Settle:
    """What a batch leaves for after its commit, each in a transaction of its own: the
    refunding reports (Partial, Canceled) and the drip-feed parents to refresh."""

    refunding: list[tuple[int, StatusReport]]
    parents: set[int]


async def _apply_progress(
    session: AsyncSession,
    progress: list[tuple[int, StatusReport]],
    provider_id: int | None,
    result: SyncResult,
) -> set[int]:
    """The whole page in one statement; should it fail, order by order, so that only the
    order that cannot be applied is skipped."""

    async def apply(part: list[tuple[int, StatusReport]]) -> list[Row[Any]]:
        return list((await session.execute(PROGRESS_SQL, progress_params(part))).all())

    progress.sort(key=lambda item: item[0])
    ids = [order_id for order_id, _ in progress]
    changed = await _isolated(session, "progress", ids, provider_id, lambda: apply(progress))
    if changed is None and len(progress) > 1:
        changed = []
        for item in progress:
            one = await _isolated(
                session, "progress", [item[0]], provider_id, partial(apply, [item])
            )
            if one is None:
                result.errors += 1
            else:
                changed.extend(one)
    elif changed is None:
        result.errors += 1
        changed = []
    result.changed += len(changed)
    # A parent's id is lower than its runs': refreshed after the commit (the lock order).
    return {row.parent_id for row in changed if row.parent_id is not None}


async def _apply_batch(
    session: AsyncSession,
    rows: Mapping[str, tuple[int, str, int | None, int | None] | Tracked],
    answers: Mapping[str, ProviderOrderStatus | ProviderError],
    result: SyncResult,
    provider_id: int | None = None,
) -> Settle:
    """Apply what moves no money in the caller's transaction; what is left to `settle`
    once it has committed."""
    errors: list[tuple[int, str]] = []
    anomalous: list[tuple[int, ProviderOrderStatus]] = []
    posts: list[tuple[int, int]] = []
    progress: list[tuple[int, StatusReport]] = []
    refunding: list[tuple[int, StatusReport]] = []
    for provider_order_id, answer in answers.items():
        found = rows.get(provider_order_id)
        if found is None:
            continue
        row = Tracked(*found)
        if isinstance(answer, ProviderError):
            errors.append((row.id, answer.message[:500]))
            continue
        report = report_from(answer)
        if report is None:
            anomalous.append((row.id, answer))
            continue
        served = to_int(answer.extra.get("posts"))
        if served is not None and served >= 0:
            posts.append((row.id, served))
        if not _differs(row, report):
            continue
        if report.status in PROGRESS_STATUSES:
            progress.append((row.id, report))
        else:
            refunding.append((row.id, report))
    if errors:
        result.errors += len(errors)
        events = [
            {
                "order_id": order_id,
                "action": "status",
                "outcome": "error",
                "detail": {"message": message},
            }
            for order_id, message in errors
        ]
        await _isolated(
            session,
            "error events",
            [order_id for order_id, _ in errors],
            provider_id,
            lambda: session.execute(insert(UpstreamEvent), events),
        )
    if anomalous:
        result.anomalies += len(anomalous)
        await _flag_anomalies(session, anomalous, provider_id)
    if posts:
        await _isolated(
            session,
            "posts",
            [order_id for order_id, _ in posts],
            provider_id,
            lambda: session.execute(
                POSTS_SQL, {"ids": [i for i, _ in posts], "posts": [n for _, n in posts]}
            ),
        )
    parents = await _apply_progress(session, progress, provider_id, result) if progress else set()
    return Settle(sorted(refunding, key=lambda item: item[0]), parents)


async def _alone(
    db: Database,
    what: str,
    order_id: int,
    provider_id: int | None,
    work: Callable[[AsyncSession], Awaitable[T]],
) -> T | None:
    """`work` in a short transaction of its own; None (logged) when it fails."""
    try:
        async with db.transaction() as session:
            return await work(session)
    except (DBAPIError, OSError) as exc:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        log.warning(
            "status sync: %s not applied for order %s: %s",
            what,
            order_id,
            reason,
            extra={"provider_id": provider_id, "order_ids": [order_id], "reason": reason},
        )
        return None


async def settle(
    db: Database, settle: Settle, result: SyncResult, provider_id: int | None = None
) -> None:
    """Partial and Canceled reports through the exact-once refund path, and the drip-feed
    parents of progressed runs: each order in its own short transaction (its owner
    locked first, then the order), so that no transaction holds several users' rows."""
    for order_id, report in settle.refunding:
        changed = await _alone(
            db,
            f"{report.status} report",
            order_id,
            provider_id,
            partial(apply_status, order_id=order_id, report=report, source="provider"),
        )
        if changed is None:
            result.errors += 1
        elif changed:
            result.changed += 1
    for parent_id in sorted(settle.parents):
        await _alone(
            db,
            "drip-feed parent",
            parent_id,
            provider_id,
            partial(refresh_parent, parent_id=parent_id),
        )


async def apply_batch(
    db: Database,
    rows: Mapping[str, tuple[int, str, int | None, int | None] | Tracked],
    answers: Mapping[str, ProviderOrderStatus | ProviderError],
    result: SyncResult,
    provider_id: int | None = None,
) -> None:
    """One page of answers: the batch's transaction, then each refund on its own."""
    async with db.transaction() as session:
        after = await _apply_batch(session, rows, answers, result, provider_id)
    await settle(db, after, result, provider_id)


async def sync_provider(
    db: Database, client: ProviderClient, provider_id: int, *, concurrency: int = 4
) -> SyncResult:
    """Walk the provider's active orders by id, 100 per request, a few requests in flight."""
    result = SyncResult()
    last_id = 0
    semaphore = asyncio.Semaphore(concurrency)
    tasks: list[asyncio.Task[None]] = []

    async def one_batch(rows: dict[str, Tracked]) -> None:
        ids = [row.id for row in rows.values()]
        async with semaphore:
            try:
                answers = await client.statuses(list(rows))
            except ProviderError as exc:
                result.errors += len(rows)
                PROVIDER_ERRORS.labels(str(provider_id), type(exc).__name__).inc()
                log.warning(
                    "status sync batch failed: %s (orders %d to %d)",
                    exc.message,
                    ids[0],
                    ids[-1],
                    extra={"provider_id": provider_id, "order_ids": ids, "reason": exc.message},
                )
                return
            try:
                await apply_batch(db, rows, answers, result, provider_id)
            except (DBAPIError, OSError) as exc:
                # The database was lost mid-batch. The next sync applies it again: every
                # update is idempotent.
                result.errors += len(rows)
                reason = (
                    f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
                )
                log.warning(
                    "status sync batch not applied: %s (orders %d to %d)",
                    reason,
                    ids[0],
                    ids[-1],
                    extra={"provider_id": provider_id, "order_ids": ids, "reason": reason},
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
                        Order.quantity,
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
        rows = {str(r[1]): Tracked(r[0], r[2], r[3], r[4], r[5]) for r in batch}
        result.checked += len(rows)
        while len(tasks) >= concurrency * 2:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            tasks = [t for t in tasks if t not in done]
        tasks.append(asyncio.create_task(one_batch(rows)))
    if tasks:
        await asyncio.gather(*tasks)
    STATUS_UPDATES.inc(result.changed)
    return result


# Providers that send us status webhooks are polled this many times less often: polling
# stays the safety net for an event lost on the way.
WEBHOOK_POLL_FACTOR = 10


def polled_now(provider: Provider, settings: Settings, now: float) -> bool:
    """Whether this run polls the provider: always, unless it sends us status webhooks;
    then one run in WEBHOOK_POLL_FACTOR (by the clock, so every worker agrees)."""
    if provider.webhook_secret_encrypted is None:
        return True
    period = max(1, settings.status_sync_seconds)
    return int(now // period) % WEBHOOK_POLL_FACTOR == 0


async def providers_due(db: Database, settings: Settings) -> list[int]:
    """The enabled providers this run polls (see `polled_now`), by id."""
    async with db.session() as session:
        providers = list(
            await session.scalars(select(Provider).where(Provider.enabled).order_by(Provider.id))
        )
    now = time.time()
    return [p.id for p in providers if polled_now(p, settings, now)]


async def queue_status_syncs(
    db: Database, settings: Settings, enqueue: Callable[[int], Awaitable[bool]]
) -> list[int]:
    """The `sync_statuses` cron's whole work: one job per provider polled now (its job id
    is the provider's, JobQueue.sync_provider: a provider whose sync still runs gets no
    second one). The cron waits on no provider, so it never overlaps itself, and one
    slow provider delays only its own orders. The providers enqueued."""
    return [
        provider_id
        for provider_id in await providers_due(db, settings)
        if await enqueue(provider_id)
    ]


async def sync_one(
    db: Database, http: httpx.AsyncClient, settings: Settings, provider_id: int
) -> SyncResult:
    """One provider's sync (the `sync_provider_statuses` job); nothing if it is gone or
    disabled."""
    async with db.session() as session:
        provider = await session.get(Provider, provider_id)
    if provider is None or not provider.enabled:
        return SyncResult()
    return await sync_provider(db, client_for(provider, settings.secret_key, http), provider.id)


async def sync_all(db: Database, http: httpx.AsyncClient, settings: Settings) -> SyncResult:
    """Every provider polled now, all at once, each on its own (a slow one delays only
    its own orders). The worker runs them as separate jobs instead (`queue_status_syncs`)."""
    total = SyncResult()
    parts = await asyncio.gather(
        *(sync_one(db, http, settings, p) for p in await providers_due(db, settings))
    )
    for part in parts:
        total.checked += part.checked
        total.changed += part.changed
        total.errors += part.errors
        total.anomalies += part.anomalies
    return total
