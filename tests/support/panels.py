"""Several panels beside each other, as operators run them: each on its own database, with
its own settings, sharing whatever the test shares (a Redis database, a sandbox)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import asyncpg
import httpx

from app import migrate
from app.catalog.models import Category, Service
from app.context import AppContext
from app.main import create_app
from app.providers.client import build_http_client
from app.settings import Settings
from tests.support.accounts import open_reseller
from tests.support.api import Reseller, order_id_of
from tests.support.env import ADMIN_TOKEN, BASE_DB, SECRET_KEY, TEST_REDIS
from tests.support.upstream import register_provider, stop_worker
from workers.main import build_worker


def panel_settings(database_url: str, **overrides: Any) -> Settings:
    """A panel's settings as an operator writes them: only what differs from the defaults
    (QUEUE_NAME and REDIS_PREFIX unset unless given), on the tests' Redis database."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": TEST_REDIS,
        "admin_token": ADMIN_TOKEN,
        "secret_key": SECRET_KEY,
        "log_json": False,
        "rate_limit_per_ip": 0,
        "rate_limit_per_key": 0,
        # The providers of the tests are sandboxes on 127.0.0.1.
        "provider_allow_private": True,
        **overrides,
    }
    return Settings(**values)


@asynccontextmanager
async def another_database() -> AsyncIterator[str]:
    """A fresh, migrated database for one more panel, dropped afterwards."""
    name = f"smm_test_panel_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(BASE_DB)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = BASE_DB.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
    finally:
        admin = await asyncpg.connect(BASE_DB)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@dataclass
class Panel:
    """One running panel: its API (in process, over ASGI) and what its worker ran."""

    settings: Settings
    ctx: AppContext
    http: httpx.AsyncClient
    ran: list[str] = field(default_factory=list)  # job ids, in the order they started

    async def call(self, key: str, action: str, **fields: Any) -> Any:
        data = {"key": key, "action": action, **{k: str(v) for k, v in fields.items()}}
        response = await self.http.post("/api/v2", data=data)
        assert response.status_code == 200, response.text
        return response.json()

    async def reseller_on(self, sandbox_url: str, balance: str) -> tuple[Reseller, int]:
        """A reseller with `balance` and a service relayed to the sandbox's service 1."""
        provider_id = await register_provider(self.ctx, self.settings, sandbox_url)
        async with self.ctx.db.transaction() as session:
            category = Category(name="Shared Redis")
            session.add(category)
            await session.flush()
            service = Service(
                category_id=category.id,
                name="Followers",
                rate=Decimal("0.90"),
                min_quantity=10,
                max_quantity=100_000,
                provider_id=provider_id,
                provider_service_id="1",
            )
            session.add(service)
            await session.flush()
        email = f"{uuid.uuid4().hex[:8]}@example.com"
        return await open_reseller(self.ctx, balance, email), service.id

    async def add(self, key: str, service_id: int, link: str) -> int:
        return order_id_of(await self.call(key, "add", service=service_id, link=link, quantity=100))


@asynccontextmanager
async def running_panel(settings: Settings) -> AsyncIterator[Panel]:
    """The panel's app with its lifespan (its own pools and job queue) and an HTTP client
    talking to it."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://panel.test") as http:
            yield Panel(settings, app.state.ctx, http)


@asynccontextmanager
async def working(*panels: Panel) -> AsyncIterator[None]:
    """A worker for each panel, running (cron schedule included) in this process until the
    block ends; each records the ids of the jobs it starts in its panel's `ran`."""
    http = build_http_client(connect_timeout=2, read_timeout=10, allow_private=True)
    workers = []
    for panel in panels:

        async def record(job_ctx: dict[str, Any], ran: list[str] = panel.ran) -> None:
            ran.append(job_ctx["job_id"])

        workers.append(
            build_worker(
                panel.settings,
                ctx={"db": panel.ctx.db, "http": http},
                on_job_start=record,
                handle_signals=False,
                poll_delay=0.05,
            )
        )
    tasks = [asyncio.create_task(worker.async_run()) for worker in workers]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for worker in workers:
            await stop_worker(worker)
        await http.aclose()
