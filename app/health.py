"""Liveness and readiness probes."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError
from sqlalchemy import func, select, text

from app import migrate
from app.http.auth import authenticated, require
from app.http.context import Services, get_services
from app.metrics import (
    DELETIONS_OVERDUE,
    ORDERS_BY_STATUS,
    PROVIDER_BALANCE,
    QUEUE_DEPTH,
    REVIEW_QUEUE,
    SUPPORT_OPEN,
    exposition,
)
from app.orders.models import STATUSES, UP_REVIEW, Order
from app.privacy import service as privacy
from app.providers.models import Provider
from app.tickets import service as tickets

router = APIRouter(tags=["health"])
metrics_router = APIRouter(prefix="/admin/v1", dependencies=[authenticated])
scrape_router = APIRouter(dependencies=[authenticated])
log = logging.getLogger(__name__)


async def refresh_gauges(ctx: Services) -> None:
    """Gauges read from the source of truth at scrape time (any process can serve them)."""
    async with ctx.db.session() as session:
        counts = dict(
            (
                await session.execute(
                    select(Order.status, func.count(Order.id))
                    .where(Order.parent_id.is_(None))
                    .group_by(Order.status)
                )
            ).all()
        )
        in_review = await session.scalar(
            select(func.count(Order.id)).where(Order.upstream_state == UP_REVIEW)
        )
        balances = (
            await session.execute(
                select(Provider.id, Provider.last_balance).where(Provider.last_balance.is_not(None))
            )
        ).all()
        DELETIONS_OVERDUE.set(await privacy.overdue_deletion_requests(session))
        SUPPORT_OPEN.set(await tickets.open_count(session))
    for status in STATUSES:
        ORDERS_BY_STATUS.labels(status).set(counts.get(status, 0))
    REVIEW_QUEUE.set(in_review or 0)
    for provider_id, balance in balances:
        if balance is not None:
            PROVIDER_BALANCE.labels(str(provider_id)).set(float(balance))
    if ctx.jobs.redis is not None:
        try:
            QUEUE_DEPTH.set(await ctx.jobs.redis.zcard(ctx.jobs.queue_name))
        except RedisError:
            log.warning("queue depth unavailable: Redis unreachable")


async def metrics(request: Request) -> PlainTextResponse:
    await refresh_gauges(get_services(request))
    return PlainTextResponse(exposition(), media_type=CONTENT_TYPE_LATEST)


for _router, _path in ((scrape_router, "/metrics"), (metrics_router, "/metrics")):
    _router.add_api_route(
        _path,
        metrics,
        methods=["GET"],
        tags=["health"],
        summary="Prometheus metrics",
        description="Text exposition format; scrape with ADMIN_TOKEN or a staff token"
        " holding `metrics:read`. Requests, "
        "latencies, API calls per action, orders by status, review queue, relay outcomes, "
        "provider errors and balances, queue depth, gateway notifications.",
        response_class=PlainTextResponse,
        dependencies=[require("metrics:read")],
    )


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


_expected: frozenset[str] | None = None


def expected_schema() -> frozenset[str]:
    """The code's migration head(s), read once per process."""
    global _expected
    if _expected is None:
        _expected = migrate.expected_revisions()
    return _expected


async def schema_check(ctx: Services) -> str:
    """ "ok" when the database is at the code's migration head(s)."""
    expected = expected_schema()
    try:
        async with ctx.db.engine.connect() as conn:
            applied = frozenset((await conn.execute(text(migrate.CURRENT_REVISION_SQL))).scalars())
    except Exception:
        applied = frozenset()
    if applied == expected:
        return "ok"
    return (
        f"error: database at {','.join(sorted(applied)) or 'no revision'}, "
        f"code expects {','.join(sorted(expected))}"
    )


@router.get(
    "/readyz",
    summary="Readiness: PostgreSQL and Redis are reachable and the schema is the code's",
    description="503 while PostgreSQL or Redis is unreachable, or while the database schema "
    "is at another revision than the code's migrations (run `smm-panel migrate`).",
)
async def readyz(request: Request) -> JSONResponse:
    ctx = get_services(request)
    checks: dict[str, str] = {}
    try:
        async with ctx.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
        checks["schema"] = await schema_check(ctx)
    except Exception as exc:  # any failure means not ready
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        if ctx.jobs.redis is None:
            raise ConnectionError("no redis pool")
        await ctx.jobs.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"ready": ready, **checks}, status_code=200 if ready else 503)
