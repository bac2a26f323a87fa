"""create_app(): routers, lifespan (engine, Redis pool), error handlers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.admin.router import router as admin_router
from app.api_v2.router import DirectRoute
from app.api_v2.router import router as api_v2_router
from app.client.router import router as client_router
from app.context import AppContext
from app.db import Database
from app.health import metrics_router, scrape_router
from app.health import router as health_router
from app.http.observability import RequestContext
from app.http.problems import install as install_problem_handlers
from app.http.security import BodySizeLimit, SecurityHeaders
from app.jobs import JobQueue
from app.payments.router import router as payments_router
from app.providers.client import build_http_client
from app.settings import Settings, get_settings


async def build_context(settings: Settings) -> AppContext:
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError("DATABASE_URL and REDIS_URL must be set (smm-panel run sets them)")
    db = Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        driver_pool_size=settings.db_driver_pool_size,
    )
    jobs = await JobQueue.connect(settings.redis_url, settings.queue_name)
    http = build_http_client(settings.provider_connect_timeout, settings.provider_read_timeout)
    return AppContext(settings=settings, db=db, jobs=jobs, http=http)


async def close_context(ctx: AppContext) -> None:
    await ctx.jobs.close()
    await ctx.http.aclose()
    await ctx.db.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = await build_context(settings)
        app.state.ctx = ctx
        try:
            yield
        finally:
            await close_context(ctx)

    app = FastAPI(
        title="smm-panel",
        version="0.1.0",
        description=(
            "SMM panel: the public API v2 for resellers (`/api/v2`) and the operator API "
            "(`/admin/v1`, bearer token)."
        ),
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_middleware(DirectRoute)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(RequestContext, log_requests=settings.log_requests)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(scrape_router)
    app.include_router(api_v2_router)
    app.include_router(admin_router)
    app.include_router(payments_router)
    app.include_router(client_router)
    return app
