"""The arq worker: job functions, cron schedule and the sweeper.

Jobs call domain services. Every job is derivable from database rows, so the sweeper can
re-enqueue whatever Redis lost; deterministic job ids make duplicates collapse.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from datetime import timedelta
from typing import Any

import httpx
from arq import cron
from arq.cron import CronJob
from arq.worker import Worker
from arq.worker import func as job_function
from prometheus_client import start_http_server
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import func, select

from app.db import Database, utcnow
from app.flows import refills as refill_relay
from app.flows import relay, sync
from app.jobs import SERIALIZERS, JobQueue, redis_settings
from app.ledger import service as ledger
from app.mail import service as mail
from app.metrics import (
    LEDGER_CHECKED_AT,
    LEDGER_VIOLATIONS,
    PROVIDER_ALERTS,
    PROVIDER_BALANCE,
    REVIEW_QUEUE,
)
from app.notifications import service as notifications
from app.notifications.telegram import TelegramError
from app.orders import average, stuck
from app.orders.models import UP_REVIEW, Order
from app.privacy import service as privacy
from app.providers import catalog
from app.providers.client import ProviderError, build_http_client
from app.providers.models import Provider
from app.providers.service import client_for, record_balance
from app.receipts import service as receipts
from app.settings import Settings, get_settings
from app.webhooks import service as webhooks

log = logging.getLogger(__name__)

Ctx = dict[str, Any]


async def startup(ctx: Ctx) -> None:
    settings: Settings = ctx.setdefault("settings", get_settings())
    if "db" not in ctx:
        assert settings.database_url, "DATABASE_URL is required"
        ctx["db"] = Database(
            settings.database_url, pool_size=10, max_overflow=10, pooler=settings.db_pooler
        )
        ctx["owns_db"] = True
    if "http" not in ctx:
        ctx["http"] = build_http_client(
            settings.provider_connect_timeout,
            settings.provider_read_timeout,
            allow_private=settings.provider_allow_private,
            total_timeout=settings.provider_total_timeout,
        )
        ctx["owns_http"] = True
    ctx["jobs"] = JobQueue(ctx["redis"], settings.arq_queue, settings.redis_namespace)
    ctx["send_slots"] = relay.SendSlots(settings.relay_concurrency, ctx["http"])


async def shutdown(ctx: Ctx) -> None:
    await ctx["send_slots"].aclose()
    if ctx.pop("owns_http", False):
        await ctx["http"].aclose()
    if ctx.pop("owns_db", False):
        await ctx["db"].dispose()


async def relay_due_orders(ctx: Ctx) -> dict[str, int]:
    """Relay every due order in batches (see relay.relay_due)."""
    run = await relay.relay_due(ctx["db"], ctx["settings"], ctx["send_slots"])
    jobs: JobQueue = ctx["jobs"]
    for order_id in run.cancel_due:
        await jobs.relay_cancel(order_id)
    if run.more:
        await jobs.relay_due()  # the run stopped for time with orders still due
    return dict(run.outcomes)


async def relay_order(ctx: Ctx, order_id: int) -> str:
    """One order: jobs of this kind, enqueued by earlier versions, may still be queued."""
    outcome = await relay.relay_order(ctx["db"], ctx["http"], ctx["settings"], order_id)
    if outcome.cancel_due:
        await ctx["jobs"].relay_cancel(order_id)
    if outcome.outcome == "failover":
        await ctx["jobs"].relay_due()  # queued again, for its next provider
    return outcome.outcome


async def relay_cancel(ctx: Ctx, order_id: int) -> str:
    return await relay.relay_cancel(ctx["db"], ctx["http"], ctx["settings"], order_id)


async def relay_refill(ctx: Ctx, refill_id: int) -> str:
    return await refill_relay.relay_refill(ctx["db"], ctx["http"], ctx["settings"], refill_id)


async def sync_statuses(ctx: Ctx) -> dict[str, int]:
    """The cron: only enqueues one `sync_provider_statuses` job per provider (job id
    `sync:provider:<id>`, one at a time per provider); it never waits on a provider, so
    it never overlaps itself."""
    jobs: JobQueue = ctx["jobs"]
    queued = await sync.queue_status_syncs(ctx["db"], ctx["settings"], jobs.sync_provider)
    return {"queued": len(queued)}


async def sync_provider_statuses(ctx: Ctx, provider_id: int) -> dict[str, int]:
    """One provider's status sync, in its own job: a slow provider delays only itself."""
    result = await sync.sync_one(ctx["db"], ctx["http"], ctx["settings"], provider_id)
    return {
        "checked": result.checked,
        "changed": result.changed,
        "errors": result.errors,
        "anomalies": result.anomalies,
    }


async def sync_refills(ctx: Ctx) -> int:
    return await refill_relay.sync_refills(ctx["db"], ctx["http"], ctx["settings"])


async def sweep(ctx: Ctx) -> dict[str, int]:
    """Re-derive due work from the database: nothing depends on Redis having kept it."""
    db: Database = ctx["db"]
    settings: Settings = ctx["settings"]
    jobs: JobQueue = ctx["jobs"]
    to_review = await relay.move_stale_sending_to_review(db, settings)
    await relay.requeue_reviews_with_request_id(db)
    await refill_relay.stale_refills_to_queue(db, settings)
    orders = await relay.due_orders(db)
    if orders:
        await jobs.relay_due()
    cancels = await relay.due_cancels(db)
    for order_id in cancels:
        await jobs.relay_cancel(order_id)
    refills = await refill_relay.due_refills(db)
    for refill_id in refills:
        await jobs.relay_refill(refill_id)
    async with db.session() as session:
        in_review = await session.scalar(
            select(func.count(Order.id)).where(Order.upstream_state == UP_REVIEW)
        )
    REVIEW_QUEUE.set(in_review or 0)
    return {
        "to_review": len(to_review),
        "orders": len(orders),
        "cancels": len(cancels),
        "refills": len(refills),
    }


async def check_provider_balances(ctx: Ctx) -> dict[int, str]:
    db: Database = ctx["db"]
    settings: Settings = ctx["settings"]
    seen: dict[int, str] = {}
    async with db.session() as session:
        providers = list(await session.scalars(select(Provider).where(Provider.enabled)))
    for provider in providers:
        try:
            balance = await client_for(provider, settings.secret_key, ctx["http"]).balance()
        except ProviderError as exc:
            log.warning("provider balance unavailable", extra={"provider_id": provider.id})
            seen[provider.id] = f"error: {exc.message}"
            continue
        PROVIDER_BALANCE.labels(str(provider.id)).set(float(balance.balance))
        if balance.balance <= 0:
            PROVIDER_ALERTS.labels(str(provider.id), "balance_empty").inc()
            log.error("provider balance is empty", extra={"provider_id": provider.id})
        async with db.transaction() as session:
            row = await session.get(Provider, provider.id, with_for_update=True)
            if row is not None:
                # Below its threshold: one alert, until the balance has recovered.
                await record_balance(session, row, balance.balance)
        seen[provider.id] = str(balance.balance)
    return seen


async def sync_catalogs(ctx: Ctx) -> dict[int, str]:
    """Every minute: sync the catalog of each provider whose `sync_minutes` have passed
    (app/providers/catalog.py). A failed sync is recorded and alerted, never raised."""
    db: Database = ctx["db"]
    settings: Settings = ctx["settings"]
    done: dict[int, str] = {}
    for provider_id in await catalog.due_providers(db):
        try:
            outcome = await catalog.sync_provider(db, ctx["http"], settings, provider_id)
        except Exception:  # one provider's trouble never stops the others' sync
            log.exception("catalog sync crashed", extra={"provider_id": provider_id})
            done[provider_id] = "crashed"
            continue
        done[provider_id] = "ok" if outcome.ok else f"failed: {outcome.error}"
    return done


async def check_stuck_orders(ctx: Ctx) -> list[int]:
    """Every 10 minutes: alert (once each) and count orders without upstream progress."""
    db: Database = ctx["db"]
    settings: Settings = ctx["settings"]
    async with db.transaction() as session:
        return await stuck.alert_stuck(session, utcnow(), settings.stuck_after_seconds)


async def enforce_retention(ctx: Ctx) -> dict[str, int]:
    """Daily: purge erased users past the retention period and old activity-log rows."""
    db: Database = ctx["db"]
    settings: Settings = ctx["settings"]
    now = utcnow()
    async with db.transaction() as session:
        purged = await privacy.purge_erased_users(
            session, now - timedelta(days=settings.retention_days)
        )
        counts = await privacy.purge_activity(
            session, now - timedelta(days=settings.activity_retention_days)
        )
    if purged or any(counts.values()):
        log.info("retention enforced", extra={"users_purged": len(purged), **counts})
    return {"users_purged": len(purged), **counts}


async def audit_ledger(ctx: Ctx) -> dict[str, int]:
    """Every 10 minutes: the ledger invariant check (SPEC §3) over the whole database.

    The result is exported (smm_ledger_violations, smm_ledger_checked_at) and any violation
    is logged at error level with the first ones, so an alert fires without anyone asking.
    """
    db: Database = ctx["db"]
    async with db.session() as session:
        report = await ledger.check_invariants(session)
    LEDGER_VIOLATIONS.set(len(report.violations))
    LEDGER_CHECKED_AT.set(utcnow().timestamp())
    if not report.ok:
        log.error(
            "ledger invariant violated",
            extra={"violations": len(report.violations), "first": report.violations[:5]},
        )
    return {
        "violations": len(report.violations),
        "checked_users": report.checked_users,
        "checked_orders": report.checked_orders,
    }


async def measure_average_times(ctx: Ctx) -> int:
    """Every 10 minutes: each service's average completion time (app/orders/average.py)."""
    db: Database = ctx["db"]
    async with db.transaction() as session:
        return await average.refresh(session, utcnow())


FUNCTIONS = [
    relay_due_orders,
    relay_order,
    relay_cancel,
    relay_refill,
    sync_statuses,
    sync_provider_statuses,
    sync_refills,
    sweep,
    audit_ledger,
]


async def deliver_webhooks(ctx: Ctx) -> dict[str, int]:
    """Deliver the status webhook events that are due (the outbox is the database)."""
    settings: Settings = ctx["settings"]
    mailer = mail.Mailer(ctx["db"], settings.mail_url, settings.mail_from)
    # Their own client: customers' URLs, under WEBHOOK_ALLOW_PRIVATE (not the providers').
    async with webhooks.delivery_client(settings) as http:
        run = await webhooks.deliver_due(ctx["db"], http, settings, mailer)
    return {"delivered": run.delivered, "failed": run.failed}


async def deliver_notifications(ctx: Ctx) -> dict[str, int]:
    """Tell customers what they chose to hear (the outbox is the database): by mail, and
    by Telegram where they linked the panel's bot."""
    settings: Settings = ctx["settings"]
    mailer = mail.Mailer(ctx["db"], settings.mail_url, settings.mail_from)
    async with httpx.AsyncClient() as http:
        run = await notifications.deliver_due(ctx["db"], http, settings, mailer)
    return {"mailed": run.mailed, "sent": run.sent, "failed": run.failed}


async def poll_telegram(ctx: Ctx) -> int:
    """Read the bot's new messages: the codes that link customers' chats."""
    settings: Settings = ctx["settings"]
    bot = notifications.bot_of(settings)
    if bot is None:
        return 0
    async with httpx.AsyncClient() as http:
        try:
            return await notifications.poll_updates(ctx["db"], http, bot, settings.panel_name)
        except TelegramError as exc:
            log.warning("telegram poll failed", extra={"error": str(exc)})
            return 0


async def deliver_mail(ctx: Ctx) -> int:
    """Send what the outbox holds and the API's own attempt missed."""
    settings: Settings = ctx["settings"]
    return await mail.deliver_due(mail.Mailer(ctx["db"], settings.mail_url, settings.mail_from))


async def deliver_receipts(ctx: Ctx) -> dict[str, int]:
    """Register the due receipts with the tax service and cancel those of reversed
    deposits (FISCAL_BACKEND=self-employed); the rows are the outbox."""
    settings: Settings = ctx["settings"]
    mailer = mail.Mailer(ctx["db"], settings.mail_url, settings.mail_from)
    run = await receipts.deliver_due(ctx["db"], ctx["http"], settings, mailer)
    return {"registered": run.registered, "cancelled": run.cancelled, "failed": run.failed}


def _every(seconds: int) -> set[int]:
    seconds = max(1, min(60, seconds))
    return set(range(0, 60, seconds))


def cron_jobs(settings: Settings) -> list[CronJob]:
    """The schedule, the same for every way of starting a worker."""
    return [
        cron(sweep, second=_every(10), run_at_startup=True),
        cron(sync_statuses, second=_every(settings.status_sync_seconds)),
        cron(sync_refills, second={30}),
        cron(deliver_mail, second=_every(20)),
        cron(deliver_webhooks, second=_every(5)),
        cron(deliver_receipts, second={25, 55}),
        cron(deliver_notifications, second=_every(10)),
        cron(poll_telegram, second=_every(5)),
        cron(check_provider_balances, minute=set(range(0, 60, 10)), second={15}),
        cron(sync_catalogs, second={40}),
        cron(check_stuck_orders, minute=set(range(2, 60, 10)), second={50}),
        cron(enforce_retention, hour={3}, minute={30}, second={0}),
        cron(audit_ledger, minute=set(range(5, 60, 10)), second={45}),
        cron(measure_average_times, minute=set(range(7, 60, 10)), second={25}),
    ]


def _under_prefix(settings: Settings, schedule: list[CronJob]) -> list[CronJob]:
    """arq makes a cron job's id from its name and tick (`<name>:<ms>`), whatever the
    queue: each job is named under the panel's prefix, so panels sharing one Redis each
    run every tick of their own schedule."""
    prefix = settings.redis_namespace
    return [dataclasses.replace(job, name=f"{prefix}:{job.name}") for job in schedule]


def worker_options(settings: Settings, *, burst: bool = False) -> dict[str, Any]:
    """Everything arq's Worker takes, built in one place for `smm-panel worker`, `smm-panel
    run`, tests and `arq workers.main.WorkerSettings`."""
    schedule = _under_prefix(settings, cron_jobs(settings))
    # A burst worker runs no schedule, but still runs cron jobs another worker left queued.
    leftover_crons = (
        [job_function(job.coroutine, name=job.name) for job in schedule] if burst else []
    )
    return dict(
        functions=[*FUNCTIONS, *leftover_crons],
        cron_jobs=[] if burst else schedule,
        queue_name=settings.arq_queue,
        health_check_key=f"{settings.redis_namespace}:health-check",
        redis_settings=redis_settings(settings.redis_url or "redis://127.0.0.1:6379"),
        on_startup=startup,
        on_shutdown=shutdown,
        burst=burst,
        keep_result=0,  # finished job ids become reusable: the sweeper may enqueue again
        max_jobs=50,
        job_timeout=300,
        max_tries=5,
        ctx={"settings": settings},
        handle_signals=not burst,
        poll_delay=0.2,
        **SERIALIZERS,  # JSON, never pickle
    )


def build_worker(
    settings: Settings, *, burst: bool = False, ctx: Ctx | None = None, **overrides: Any
) -> Worker:
    options = worker_options(settings, burst=burst)
    options["ctx"] = {**options["ctx"], **(ctx or {})}
    options.update(overrides)
    return Worker(**options)


async def run_worker(settings: Settings) -> None:
    """Run until stopped. A lost Redis connection (restart, failover) restarts the worker
    loop instead of ending the process: the work itself is safe in the database."""
    if settings.worker_metrics_port:
        # The worker's own counters (relay outcomes, provider errors) for Prometheus.
        start_http_server(settings.worker_metrics_port, addr=settings.host)
    while True:
        # On SIGTERM/SIGINT, running jobs get time to finish before the worker exits.
        worker = build_worker(settings, job_completion_wait=20)
        try:
            await worker.async_run()
            return
        except asyncio.CancelledError:
            return
        except (RedisConnectionError, OSError):
            log.warning("redis connection lost; restarting the worker loop")
        finally:
            with contextlib.suppress(Exception):
                await worker.close()
        await asyncio.sleep(2)


def _settings_class(settings: Settings) -> type:
    """arq's CLI reads a worker's options as class attributes: the same options."""
    options = worker_options(settings)
    options.pop("burst")
    options.pop("handle_signals")
    return type("WorkerSettings", (), options)


# For `arq workers.main.WorkerSettings`: the same jobs and schedule as `smm-panel worker`.
WorkerSettings = _settings_class(get_settings())
