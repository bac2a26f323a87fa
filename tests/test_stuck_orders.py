"""Stuck orders: accepted upstream, then no progress for longer than their service allows."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import httpx
from sqlalchemy import update

from app.context import AppContext
from app.db import utcnow
from app.metrics import STUCK_ORDERS
from app.orders.models import Order
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.env import AUTH
from tests.support.upstream import call_job, register_provider, run_jobs, sandbox, sync_statuses


async def age(ctx: AppContext, order_id: int, idle: timedelta) -> None:
    """As if the order's last upstream progress was `idle` ago."""
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Order).where(Order.id == order_id).values(updated_at=utcnow() - idle)
        )


async def test_order_without_progress_past_stuck_after_is_listed_and_alerted_once(
    ctx: AppContext,
    settings: Settings,
    client: httpx.AsyncClient,
    api: Api,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    config = SandboxConfig(
        services=[SandboxService(1, "Followers", rate=Decimal("0.40"), min=10, max=100_000)],
        seconds_to_start=3600,
        seconds_to_complete=7200,
    )
    async with sandbox(config) as (url, _):
        pid = await register_provider(ctx, settings, url)
        mapped = {"provider_id": pid, "provider_service_id": "1", "min_quantity": 10}
        hourly = await make_service(stuck_after_seconds=3600, **mapped)
        daily = await make_service(**mapped)  # the default: 24 h
        user = await make_user(balance="10")
        stuck, fresh, patient = [
            order_id_of(await api(user.key, "add", service=sid, link=link, quantity=100))
            for sid, link in (
                (hourly, "https://x.com/a"),
                (hourly, "https://x.com/b"),
                (daily, "https://x.com/c"),
            )
        ]
        await run_jobs(settings, ctx)
        await sync_statuses(settings, ctx)  # Pending upstream: In progress here
        await age(ctx, stuck, timedelta(minutes=61))
        await age(ctx, fresh, timedelta(minutes=59))
        await age(ctx, patient, timedelta(hours=23))

        listed = await client.get("/admin/v1/orders?stuck=true", headers=AUTH)
        assert [(o["id"], o["status"]) for o in listed.json()] == [(stuck, "In progress")]
        assert await call_job(settings, ctx, "check_stuck_orders") == [stuck]
        assert STUCK_ORDERS._value.get() == 1
        # Still stuck at the next check: still listed and counted, not alerted again.
        await age(ctx, patient, timedelta(hours=25))
        assert await call_job(settings, ctx, "check_stuck_orders") == [stuck, patient]
        assert STUCK_ORDERS._value.get() == 2
        alerts = (await client.get("/admin/v1/alerts", headers=AUTH)).json()
        assert [(a["kind"], a["subject"], a["subject_id"]) for a in alerts] == [
            ("order_stuck", "order", patient),
            ("order_stuck", "order", stuck),
        ]
        # Progress upstream (the sync writes the order): no longer stuck.
        await age(ctx, stuck, timedelta(0))
        listed = await client.get("/admin/v1/orders?stuck=true", headers=AUTH)
        assert [o["id"] for o in listed.json()] == [patient]
