"""A worker killed mid-call, and panels chained: reseller → A → B → sandbox."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
from sqlalchemy import select

from app import migrate
from app.catalog.models import Category, Service
from app.context import AppContext
from app.main import create_app
from app.orders.models import Order
from app.providers.service import create_provider
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from tests.support.accounts import open_reseller
from tests.support.api import Api, MakeUser, order_id_of
from tests.support.cli import worker_killed_on_exit
from tests.support.env import BASE_DB
from tests.support.ledger import ledger_ok
from tests.support.upstream import (
    call_job,
    run_jobs,
    sandbox,
    sandbox_stats,
    serve_app,
    sync_statuses,
)

LINK = "https://instagram.com/chain"


def sandbox_config(**service: Any) -> SandboxConfig:
    return SandboxConfig(
        services=[
            SandboxService(1, "Followers", rate=Decimal("0.40"), min=10, max=100_000, **service)
        ],
        seconds_to_start=0,
        seconds_to_complete=0,
    )


async def map_service(ctx: AppContext, settings: Settings, url: str, key: str, rate: str) -> int:
    async with ctx.db.transaction() as session:
        provider = await create_provider(
            session, secret=settings.secret_key, name="up", url=url, api_key=key
        )
        category = Category(name="Chained")
        session.add(category)
        await session.flush()
        service = Service(
            category_id=category.id,
            name="Followers",
            rate=Decimal(rate),
            min_quantity=10,
            max_quantity=100_000,
            cancel=True,
            refill=True,
            refill_days=30,
            provider_id=provider.id,
            provider_service_id="1",
        )
        session.add(service)
        await session.flush()
        return service.id


async def test_worker_killed_mid_call_never_sends_twice(
    api: Api, ctx: AppContext, settings: Settings, make_user: MakeUser
) -> None:
    async with sandbox(sandbox_config(behaviour="timeout", timeout_seconds=5)) as (url, _):
        sid = await map_service(ctx, settings, f"{url}/api/v2", "sandbox-key", "0.90")
        user = await make_user(balance="10")
        order_id = order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=1000))
        async with worker_killed_on_exit(settings):
            for _ in range(300):  # wait until the call is in flight
                stats = await sandbox_stats(url)
                if stats["add_calls"].get("1") == 1:
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the worker never called the provider")
            async with ctx.db.session() as session:
                assert await session.scalar(select(Order.upstream_state)) == "sending"
        # After the restart: the sweep moves the stale attempt to review, and the job that
        # arq hands out again (its worker died) finds nothing to send.
        stale = settings.model_copy(update={"sending_stale_seconds": 0})
        assert (await call_job(stale, ctx, "sweep"))["to_review"] == 1
        assert await call_job(stale, ctx, "relay_order", order_id) == "skipped"
        await call_job(stale, ctx, "sweep")
        async with ctx.db.session() as session:
            order = await session.get(Order, order_id)
            assert order is not None
            assert (order.status, order.upstream_state) == ("Pending", "review")
        assert (await sandbox_stats(url))["add_calls"] == {"1": 1}
        # The operator knows it was not created upstream and cancels it: full refund.
        from app.flows.review import review_cancel

        async with ctx.db.transaction() as session:
            assert await review_cancel(session, order_id)
        assert await api(user.key, "balance") == {"balance": "10.00000", "currency": "USD"}
        await ledger_ok(ctx)


async def test_chain_reseller_to_a_to_b_to_sandbox(
    api: Api, ctx: AppContext, settings: Settings, make_user: MakeUser
) -> None:
    name = f"smm_test_b_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(BASE_DB)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    b_url = BASE_DB.rsplit("/", 1)[0] + "/" + name
    await asyncio.to_thread(migrate.upgrade, b_url)
    b_settings = settings.model_copy(
        update={"database_url": b_url, "queue_name": settings.queue_name + ":b"}
    )
    b_app = create_app(b_settings)
    try:
        async with (
            sandbox(sandbox_config(behaviour="partial", partial_percent=60)) as (sandbox_url, _),
            b_app.router.lifespan_context(b_app),
            serve_app(b_app) as b_http,
        ):
            b_ctx: AppContext = b_app.state.ctx
            # Panel B: resells the sandbox; panel A holds an account on B.
            await map_service(b_ctx, b_settings, f"{sandbox_url}/api/v2", "sandbox-key", "0.60")
            a_account = await open_reseller(b_ctx, "50", "panel-a@example.com")
            a_key = a_account.key
            # Panel A: resells B.
            sid = await map_service(ctx, settings, f"{b_http}/api/v2", a_key, "0.90")
            reseller = await make_user(balance="10")
            order_id = order_id_of(
                await api(reseller.key, "add", service=sid, link=LINK, quantity=1000)
            )
            await run_jobs(settings, ctx)  # A → B
            await run_jobs(b_settings, b_ctx)  # B → sandbox
            assert await sync_statuses(b_settings, b_ctx) == {  # B learns Partial
                "checked": 1,
                "changed": 1,
                "errors": 0,
            }
            await sync_statuses(settings, ctx)  # A learns it from B
            assert await api(reseller.key, "status", order=order_id) == {
                "charge": "0.90000",
                "start_count": "8919",
                "status": "Partial",
                "remains": "400",
                "currency": "USD",
            }
            # Refunds flowed through both panels: 400/1000 of each charge.
            assert await api(reseller.key, "balance") == {"balance": "9.46000", "currency": "USD"}
            async with httpx.AsyncClient() as client:
                b_balance = await client.post(
                    f"{b_http}/api/v2", data={"key": a_key, "action": "balance"}
                )
            assert b_balance.json() == {"balance": "49.64000", "currency": "USD"}
            assert (await sandbox_stats(sandbox_url))["add_calls"] == {"1": 1}
            await ledger_ok(ctx)
            await ledger_ok(b_ctx)
    finally:
        admin = await asyncpg.connect(BASE_DB)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
