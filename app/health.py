"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select, text

from app.admin.auth import require_admin
from app.context import get_context
from app.metrics import ORDERS_BY_STATUS
from app.orders.models import STATUSES, Order

router = APIRouter(tags=["health"])
metrics_router = APIRouter(prefix="/admin/v1", dependencies=[Depends(require_admin)])


@metrics_router.get(
    "/metrics",
    tags=["health"],
    summary="Prometheus metrics of this process",
    description="Text exposition format; scrape with the admin bearer token.",
    response_class=PlainTextResponse,
)
async def metrics(request: Request) -> PlainTextResponse:
    async with get_context(request).db.session() as session:
        counts = dict(
            (
                await session.execute(
                    select(Order.status, func.count(Order.id))
                    .where(Order.parent_id.is_(None))
                    .group_by(Order.status)
                )
            ).all()
        )
    for status in STATUSES:
        ORDERS_BY_STATUS.labels(status).set(counts.get(status, 0))
    return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: PostgreSQL and Redis are reachable")
async def readyz(request: Request) -> JSONResponse:
    ctx = get_context(request)
    checks: dict[str, str] = {}
    try:
        async with ctx.db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
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
