"""Helpers for tests that involve a provider: a real sandbox server, burst workers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
from arq.worker import Worker
from fastapi import FastAPI

from app.context import AppContext
from app.providers.client import build_http_client
from app.providers.service import create_provider
from app.sandbox import SandboxConfig, SandboxService, create_sandbox_app
from app.sandbox.server import served
from app.settings import Settings
from workers.main import build_worker


def serve_app(app: FastAPI) -> AbstractAsyncContextManager[str]:
    """Serve an ASGI app over real HTTP on loopback; yields its base URL."""
    return served(app)


@asynccontextmanager
async def sandbox(config: SandboxConfig) -> AsyncIterator[tuple[str, FastAPI]]:
    app = create_sandbox_app(config)
    async with serve_app(app) as url:
        yield url, app


@asynccontextmanager
async def followers_provider(
    ctx: AppContext, settings: Settings, **config: Any
) -> AsyncIterator[int]:
    """A sandbox provider selling one service ("Followers", id 1, 0.40, 10 to 100,000;
    `config`: the rest of its SandboxConfig), registered with the panel; yields its id."""
    service = SandboxService(1, "Followers", rate=Decimal("0.40"), min=10, max=100_000)
    async with sandbox(SandboxConfig(services=[service], **config)) as (url, _):
        yield await register_provider(ctx, settings, url)


async def stop_worker(worker: Worker) -> None:
    """Stop a worker that runs in a task of the test (its task already cancelled): its
    jobs in flight are cancelled and awaited here, then it is closed. arq's `close()`
    gathers the job tasks it cancels without `return_exceptions`, so a job cut off at the
    end would fail the test with its CancelledError."""
    running = list(worker.tasks.values())
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    worker.tasks.clear()
    await worker.close()


async def run_jobs(settings: Settings, ctx: AppContext, **overrides: Any) -> int:
    """Run every queued job with a burst worker sharing the test's database."""
    http = build_http_client(
        connect_timeout=2,
        read_timeout=overrides.pop("read_timeout", 10),
        allow_private=settings.provider_allow_private,
    )
    worker = build_worker(settings, burst=True, ctx={"db": ctx.db, "http": http}, **overrides)
    try:
        return await worker.run_check()
    finally:
        await worker.close()
        await http.aclose()


async def upstream_states(ctx: AppContext) -> list[str]:
    """Every order's upstream state, by id."""
    from sqlalchemy import select

    from app.orders.models import Order

    async with ctx.db.session() as session:
        return list(await session.scalars(select(Order.upstream_state).order_by(Order.id)))


async def call_job(settings: Settings, ctx: AppContext, name: str, *args: Any) -> Any:
    """Call one job function directly with a real ctx (the worker's startup builds it)."""
    from workers import main

    http = build_http_client(
        connect_timeout=2, read_timeout=10, allow_private=settings.provider_allow_private
    )
    job_ctx: dict[str, Any] = {
        "settings": settings,
        "db": ctx.db,
        "http": http,
        "redis": ctx.jobs.redis,
    }
    await main.startup(job_ctx)
    try:
        return await getattr(main, name)(job_ctx, *args)
    finally:
        await http.aclose()


async def sync_statuses(settings: Settings, ctx: AppContext) -> dict[str, int]:
    """A status sync of every provider polled now, as the worker runs it: the
    `sync_provider_statuses` job of each (the `sync_statuses` cron only enqueues them),
    called here one after another; their counts summed."""
    from app.flows import sync

    total = {"checked": 0, "changed": 0, "errors": 0}
    for provider_id in await sync.providers_due(ctx.db, settings):
        part = await call_job(settings, ctx, "sync_provider_statuses", provider_id)
        total = {name: total[name] + part[name] for name in total}
    return total


async def sandbox_stats(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.get(f"{url}/sandbox/stats")
        data: dict[str, Any] = response.json()
        return data


async def set_behaviour(url: str, service_id: int, **body: Any) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{url}/sandbox/services/{service_id}/behaviour", json=body)
        assert response.status_code == 200


async def register_provider(
    ctx: AppContext,
    settings: Settings,
    url: str,
    *,
    name: str = "Sandbox",
    key: str = "sandbox-key",
) -> int:
    """Register the panel at `url` (a sandbox's base URL) as a provider; its id."""
    async with ctx.db.transaction() as session:
        provider = await create_provider(
            session, secret=settings.secret_key, name=name, url=f"{url}/api/v2", api_key=key
        )
    return provider.id


async def sandbox_control(url: str, method: str, path: str, body: Any = None) -> Any:
    """Call one of the sandbox's control endpoints (app/sandbox/control.py)."""
    async with httpx.AsyncClient() as client:
        response = await client.request(method, f"{url}/sandbox{path}", json=body)
        assert response.status_code == 200, response.text
        return response.json()


async def change_upstream(url: str, service_id: int, **fields: Any) -> None:
    """Change a service of the sandbox's catalog (rate, min, max, type, flags, name…)."""
    await sandbox_control(url, "PATCH", f"/services/{service_id}", fields)


async def remove_upstream(url: str, service_id: int) -> None:
    await sandbox_control(url, "DELETE", f"/services/{service_id}")


async def set_upstream_balance(url: str, balance: str, key: str = "sandbox-key") -> None:
    await sandbox_control(url, "PUT", f"/balances/{key}", {"balance": balance})
