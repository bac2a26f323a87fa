"""Chained panels listen (SPEC §4): panel A registers its webhook with provider B when B
sends status webhooks, verifies each event's signature, and applies it like a polled
status, so a Partial reaches A and refunds once with no polling at all."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select, update

from app import migrate
from app.context import AppContext
from app.embedded import free_port
from app.flows.sync import polled_now
from app.ledger.models import LedgerEntry
from app.main import create_app
from app.providers.models import Provider
from app.settings import Settings
from app.webhooks.models import WebhookEvent
from tests.support.accounts import open_reseller
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.env import AUTH, BASE_DB
from tests.support.ledger import ledger_ok
from tests.support.upstream import call_job, run_jobs, sandbox, serve_app, sync_statuses
from tests.test_chain_and_crash import map_service, sandbox_config

LINK = "https://instagram.com/listening"


async def refunds(ctx: AppContext, user_id: int) -> list[Decimal]:
    async with ctx.db.session() as session:
        return list(
            await session.scalars(
                select(LedgerEntry.amount).where(
                    LedgerEntry.user_id == user_id, LedgerEntry.kind == "refund"
                )
            )
        )


async def test_a_chained_panel_applies_a_partial_from_its_providers_webhook(
    api: Api,
    app: FastAPI,
    client: httpx.AsyncClient,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = f"smm_test_b_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(BASE_DB)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    b_url = BASE_DB.rsplit("/", 1)[0] + "/" + name
    await asyncio.to_thread(migrate.upgrade, b_url)
    b_settings = settings.model_copy(
        update={
            "database_url": b_url,
            "queue_name": settings.queue_name + ":b",
            "webhook_allow_private": True,  # A listens on 127.0.0.1
            "webhook_retry_base_seconds": 0,
        }
    )
    b_app = create_app(b_settings)
    # Panel A over real HTTP (the test app, already started), for B to call.
    port = free_port()
    a_server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan="off", log_config=None, access_log=False
        )
    )
    a_task = asyncio.create_task(a_server.serve())
    while not a_server.started:
        await asyncio.sleep(0.01)
        if a_task.done():
            a_task.result()
    monkeypatch.setattr(ctx.settings, "public_url", f"http://127.0.0.1:{port}")
    try:
        async with (
            sandbox(sandbox_config(behaviour="partial", partial_percent=60)) as (sandbox_url, _),
            b_app.router.lifespan_context(b_app),
            serve_app(b_app) as b_http,
        ):
            b_ctx: AppContext = b_app.state.ctx
            await map_service(b_ctx, b_settings, f"{sandbox_url}/api/v2", "sandbox-key", "0.60")
            a_account = await open_reseller(b_ctx, "50", "panel-a@example.com")
            a_key = a_account.key
            # The operator of A adds B: probed, and A's webhook registered with B.
            created = await client.post(
                "/admin/v1/providers",
                headers=AUTH,
                json={"name": "B", "url": f"{b_http}/api/v2", "api_key": a_key},
            )
            assert created.status_code == 201, created.text
            shown = created.json()
            assert (shown["webhooks"], shown["webhook_registered"]) == (True, True)
            async with ctx.db.session() as session:
                provider = await session.get(Provider, shown["id"])
            assert provider is not None
            # Polling goes on, one run in ten.
            period = settings.status_sync_seconds
            polled = [polled_now(provider, settings, t * period + 0.5) for t in range(20)]
            assert polled.count(True) == 2
            sid = await make_service(
                rate=Decimal("0.90"),
                min_quantity=10,
                provider_id=shown["id"],
                provider_service_id="1",
            )
            reseller = await make_user(balance="10")
            order_id = order_id_of(
                await api(reseller.key, "add", service=sid, link=LINK, quantity=1000)
            )
            await run_jobs(settings, ctx)  # A → B
            await run_jobs(b_settings, b_ctx)  # B → sandbox
            await sync_statuses(b_settings, b_ctx)  # B learns Partial
            sent = await call_job(b_settings, b_ctx, "deliver_webhooks")  # B tells A
            assert sent == {"delivered": 2, "failed": 0}  # In progress, then Partial
            assert await api(reseller.key, "status", order=order_id) == {
                "charge": "0.90000",
                "start_count": "8919",
                "status": "Partial",
                "remains": "400",
                "currency": "USD",
            }
            assert await refunds(ctx, reseller.user_id) == [Decimal("0.36")]
            # Delivered again (at least once): nothing moves, nothing is refunded twice.
            async with b_ctx.db.transaction() as session:
                await session.execute(
                    update(WebhookEvent).values(delivered_at=None, next_attempt_at=func.now())
                )
            assert await call_job(b_settings, b_ctx, "deliver_webhooks") == {
                "delivered": 2,
                "failed": 0,
            }
            assert await refunds(ctx, reseller.user_id) == [Decimal("0.36")]
            assert await api(reseller.key, "balance") == {"balance": "9.46000", "currency": "USD"}
            # A forged event is refused.
            forged = await client.post(
                f"/webhooks/provider/{shown['id']}",
                content=b'{"type":"order.status","order":1,"status":"Canceled"}',
                headers={
                    "webhook-id": "msg_x",
                    "webhook-timestamp": "1",
                    "webhook-signature": "v1,AAAA",
                },
            )
            assert forged.status_code == 401
            async with ctx.db.session() as session:
                count = await session.scalar(select(func.count(LedgerEntry.id)))
            assert count == 3  # deposit, charge, one refund
            await ledger_ok(ctx)
            await ledger_ok(b_ctx)
    finally:
        a_server.should_exit = True
        await a_task
        admin = await asyncpg.connect(BASE_DB)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
