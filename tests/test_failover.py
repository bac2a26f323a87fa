"""Failover: an order the provider refuses for good before accepting it goes to the
service's backup provider, exactly once; an unknown outcome never does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from app.context import AppContext
from app.db import utcnow
from app.orders.models import Order, UpstreamEvent
from app.reports.service import margin_report
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.env import AUTH
from tests.support.upstream import (
    call_job,
    register_provider,
    remove_upstream,
    run_jobs,
    sandbox,
    sandbox_control,
    sandbox_stats,
    set_behaviour,
    set_upstream_balance,
    sync_statuses,
)

LINK = "https://instagram.com/failover"


@dataclass
class Chain:
    primary_url: str
    backup_url: str
    primary: int
    backup: int
    service_id: int


def config() -> SandboxConfig:
    return SandboxConfig(
        services=[SandboxService(1, "Followers", rate=Decimal("0.40"), min=10, max=100_000)],
        seconds_to_start=3600,
        seconds_to_complete=7200,
    )


@pytest.fixture
async def chain(
    ctx: AppContext, settings: Settings, client: httpx.AsyncClient, make_service: MakeService
) -> AsyncIterator[Chain]:
    async with sandbox(config()) as (primary_url, _), sandbox(config()) as (backup_url, _):
        primary = await register_provider(ctx, settings, primary_url, name="Primary")
        backup = await register_provider(ctx, settings, backup_url, name="Backup")
        sid = await make_service(
            rate=Decimal("0.90"),
            min_quantity=10,
            provider_id=primary,
            provider_service_id="1",
            provider_rate=Decimal("0.40"),
        )
        body = {
            "backups": [{"provider_id": backup, "provider_service_id": "1", "provider_rate": "0.5"}]
        }
        put = await client.put(f"/admin/v1/services/{sid}/backups", headers=AUTH, json=body)
        assert put.status_code == 200, put.text
        assert put.json() == [
            {
                "position": 1,
                "provider_id": backup,
                "provider_service_id": "1",
                "provider_rate": "0.50000000",
            }
        ]
        yield Chain(primary_url, backup_url, primary, backup, sid)


async def history(ctx: AppContext, order_id: int) -> list[str]:
    async with ctx.db.session() as session:
        return list(
            await session.scalars(
                select(UpstreamEvent.outcome)
                .where(UpstreamEvent.order_id == order_id)
                .order_by(UpstreamEvent.id)
            )
        )


async def order_row(ctx: AppContext, order_id: int) -> Order:
    async with ctx.db.session() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        return order


@pytest.mark.parametrize("refusal", ["funds", "removed"])
async def test_definitive_refusal_sends_the_order_to_the_backup_exactly_once(
    ctx: AppContext,
    settings: Settings,
    api: Api,
    make_user: MakeUser,
    chain: Chain,
    refusal: str,
) -> None:
    if refusal == "funds":
        await set_upstream_balance(chain.primary_url, "0")
        first_error = "ProviderTransient"
    else:
        await remove_upstream(chain.primary_url, 1)
        first_error = "ProviderPermanent"
    user = await make_user(balance="10")
    order_id = order_id_of(
        await api(user.key, "add", service=chain.service_id, link=LINK, quantity=100)
    )
    await run_jobs(settings, ctx)
    order = await order_row(ctx, order_id)
    assert (order.upstream_state, order.status, order.provider_id) == (
        "sent",
        "In progress",
        chain.backup,
    )
    # Billed at the backup's rate: 0.50 × 100 / 1000.
    assert order.provider_charge == Decimal("0.05")
    assert await history(ctx, order_id) == ["attempt", first_error, "failover", "attempt", "sent"]
    # Nothing is sent again, whatever runs next.
    await call_job(settings, ctx, "sweep")
    await run_jobs(settings, ctx)
    primary, backup = await sandbox_stats(chain.primary_url), await sandbox_stats(chain.backup_url)
    assert primary["add_calls"] == ({"1": 1} if refusal == "funds" else {})
    assert (primary["orders"], backup["add_calls"], backup["orders"]) == (0, {"1": 1}, 1)
    # The status sync and the margin report follow the provider that took it.
    await sandbox_control(
        chain.backup_url,
        "POST",
        f"/orders/{order.provider_order_id}/force",
        {"status": "Completed"},
    )
    await sync_statuses(settings, ctx)
    assert (await order_row(ctx, order_id)).status == "Completed"
    async with ctx.db.session() as session:
        report = await margin_report(
            session,
            start=utcnow() - timedelta(days=1),
            end=utcnow() + timedelta(days=1),
            group_by="provider",
            currency="USD",
        )
    assert [(r.key, r.orders, r.revenue, r.cost) for r in report.rows] == [
        (chain.backup, 1, Decimal("0.09"), Decimal("0.05"))
    ]


async def test_unknown_outcome_never_fails_over(
    ctx: AppContext, settings: Settings, api: Api, make_user: MakeUser, chain: Chain
) -> None:
    await set_behaviour(chain.primary_url, 1, behaviour="timeout", timeout_seconds=3)
    user = await make_user(balance="10")
    order_id = order_id_of(
        await api(user.key, "add", service=chain.service_id, link=LINK, quantity=100)
    )
    await run_jobs(settings, ctx, read_timeout=0.5)
    await call_job(settings, ctx, "sweep")
    await run_jobs(settings, ctx, read_timeout=0.5)
    order = await order_row(ctx, order_id)
    assert (order.upstream_state, order.provider_id) == ("review", chain.primary)
    assert await history(ctx, order_id) == ["attempt", "ProviderUnknownOutcome"]
    assert (await sandbox_stats(chain.backup_url))["add_calls"] == {}
    assert (await sandbox_stats(chain.primary_url))["add_calls"] == {"1": 1}


async def test_order_input_errors_and_the_end_of_the_chain_do_not_fail_over(
    ctx: AppContext, settings: Settings, api: Api, make_user: MakeUser, chain: Chain
) -> None:
    await set_behaviour(chain.primary_url, 1, behaviour="reject", error="Incorrect link")
    user = await make_user(balance="10")
    refused = order_id_of(
        await api(user.key, "add", service=chain.service_id, link=LINK, quantity=100)
    )
    await run_jobs(settings, ctx)
    order = await order_row(ctx, refused)
    assert (order.upstream_state, order.status, order.provider_id) == (
        "rejected",
        "Canceled",
        chain.primary,
    )
    # Both providers out of funds: the order waits on the backup, it never goes back.
    await set_behaviour(chain.primary_url, 1, behaviour="complete")
    await set_upstream_balance(chain.primary_url, "0")
    await set_upstream_balance(chain.backup_url, "0")
    waiting = order_id_of(
        await api(user.key, "add", service=chain.service_id, link=LINK + "/2", quantity=100)
    )
    await run_jobs(settings, ctx)
    order = await order_row(ctx, waiting)
    assert (order.upstream_state, order.provider_id) == ("queued", chain.backup)
    assert await history(ctx, waiting) == [
        "attempt",
        "ProviderTransient",
        "failover",
        "attempt",
        "ProviderTransient",
    ]
