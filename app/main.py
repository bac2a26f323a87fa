"""create_app(): routers, lifespan (engine, Redis pool), error handlers."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from app import migrate
from app.admin.router import router as admin_router
from app.api_v2.router import DirectRoute
from app.api_v2.router import router as api_v2_router
from app.client.router import router as client_router
from app.console.router import install as install_console
from app.context import AppContext
from app.db import Database
from app.flows.notifications import router as gateway_notifications_router
from app.flows.router import webhook_router as provider_webhook_router
from app.health import metrics_router, scrape_router
from app.health import router as health_router
from app.http.auth import install_staff_tokens
from app.http.observability import RequestContext
from app.http.problems import install as install_problem_handlers
from app.http.proxy import ProxyHeaders
from app.http.security import BodySizeLimit, SecurityHeaders
from app.jobs import JobQueue
from app.logs import configure_logging
from app.payments.router import router as payments_router
from app.providers.client import build_http_client
from app.settings import Settings, get_settings
from app.staff.router import token_principal
from app.web.router import install as install_storefront

log = logging.getLogger(__name__)
DOCS_ASSETS = "/docs/assets"


async def build_context(settings: Settings) -> AppContext:
    if not settings.database_url or not settings.redis_url:
        raise RuntimeError("DATABASE_URL and REDIS_URL must be set (smm-panel run sets them)")
    db = Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        driver_pool_size=settings.db_driver_pool_size,
        listen=settings.db_listen,
        pooler=settings.db_pooler,
    )
    jobs = await JobQueue.connect(settings.redis_url, settings.arq_queue, settings.redis_namespace)
    http = build_http_client(
        settings.provider_connect_timeout,
        settings.provider_read_timeout,
        allow_private=settings.provider_allow_private,
        total_timeout=settings.provider_total_timeout,
    )
    return AppContext(settings=settings, db=db, jobs=jobs, http=http)


async def close_context(ctx: AppContext) -> None:
    await ctx.jobs.close()
    await ctx.http.aclose()
    await ctx.db.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app; called without settings it is the factory that `smm-panel serve` hands to
    uvicorn, run once in every worker process, so each process configures logging itself."""
    if settings is None:
        settings = get_settings()
        configure_logging(settings.log_level, json_format=settings.log_json)
        # Started by uvicorn directly (not through `smm-panel serve`): the same refusal.
        problems = settings.unsafe_secrets()
        if problems:
            raise SystemExit(f"smm-panel: error: {'; '.join(problems)}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = await build_context(settings)
        log.info(
            "schema revision expected",
            extra={"expected_revision": migrate.expected_revision()},
        )
        app.state.ctx = ctx
        # What exists now lives as long as the process (framework, models, routes): keep
        # it out of the collector's full passes, which would scan it all while every
        # request in flight waits (bench/probe.py measured one such pass at ~340 ms under
        # load, the whole p99 tail of `add`).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await close_context(ctx)

    # The docs pages load Swagger UI / ReDoc from the package itself: no CDN, no internet.
    app = FastAPIOffline(
        static_url=DOCS_ASSETS,
        title="smm-panel",
        version="0.1.0",
        description=(
            "SMM panel: the public API v2 for resellers (`/api/v2`) and the operator API "
            "(`/admin/v1`, bearer token)."
        ),
        lifespan=lifespan,
        # The panel exports Prometheus metrics (/metrics); the framework's own OpenTelemetry
        # hooks would only ask, on every request, whether a provider was configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_problem_handlers(app)
    app.add_middleware(DirectRoute)
    app.add_middleware(SecurityHeaders, https=settings.https)
    app.add_middleware(BodySizeLimit, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(RequestContext, log_requests=settings.log_requests)
    # Outermost: everything inside sees the client's own address and scheme.
    app.add_middleware(ProxyHeaders, trusted=settings.forwarded_allow_ips)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(scrape_router)
    app.include_router(api_v2_router)
    app.include_router(admin_router)
    install_staff_tokens(app, token_principal)
    app.include_router(payments_router)
    app.include_router(gateway_notifications_router)
    app.include_router(client_router)
    install_console(app)
    install_storefront(app)
    app.include_router(provider_webhook_router)
    return app
