"""The relay with providers that take request ids (SPEC §4): probed when added, shown and
overridable by the operator; every `add` carries the order's request id, so an unknown
outcome is sent again instead of going to review, and the provider still has one order.
Providers that know nothing of it keep the review rule."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select, update

from app.context import AppContext
from app.db import utcnow
from app.flows import relay
from app.orders.models import Order, UpstreamEvent
from app.providers.service import client_for
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok
from tests.support.upstream import call_job, run_jobs, sandbox, sandbox_stats, set_behaviour

LINK = "https://instagram.com/request-id"


@dataclass
class Upstream:
    url: str
    provider_id: int
    service_id: int  # our service relayed to the sandbox's service 1


async def _upstream(
    client: httpx.AsyncClient, make_service: MakeService, url: str
) -> tuple[int, int]:
    answer = await client.post(
        "/admin/v1/providers",
        headers=AUTH,
        json={"name": "Sandbox", "url": f"{url}/api/v2", "api_key": "sandbox-key"},
    )
    assert answer.status_code == 201, answer.text
    provider_id: int = answer.json()["id"]
    sid = await make_service(
        rate=Decimal("0.90"),
        min_quantity=10,
        provider_id=provider_id,
        provider_service_id="1",
        provider_rate=Decimal("0.40"),
    )
    return provider_id, sid


def _config(extensions: bool) -> SandboxConfig:
    return SandboxConfig(
        services=[SandboxService(1, "Followers", rate=Decimal("0.40"), min=10, max=100_000)],
        seconds_to_start=0,
        seconds_to_complete=0,
        extensions=extensions,
    )


@pytest.fixture
async def ours(client: httpx.AsyncClient, make_service: MakeService) -> AsyncIterator[Upstream]:
    async with sandbox(_config(True)) as (url, _):
        provider_id, sid = await _upstream(client, make_service, url)
        yield Upstream(url, provider_id, sid)


@pytest.fixture
async def standard(client: httpx.AsyncClient, make_service: MakeService) -> AsyncIterator[Upstream]:
    async with sandbox(_config(False)) as (url, _):
        provider_id, sid = await _upstream(client, make_service, url)
        yield Upstream(url, provider_id, sid)


async def order_row(ctx: AppContext, order_id: int) -> Order:
    async with ctx.db.session() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        return order


async def make_due(ctx: AppContext, order_id: int) -> None:
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Order).where(Order.id == order_id).values(next_attempt_at=utcnow())
        )


async def outcomes(ctx: AppContext, order_id: int) -> list[str]:
    async with ctx.db.session() as session:
        return list(
            await session.scalars(
                select(UpstreamEvent.outcome)
                .where(UpstreamEvent.order_id == order_id, UpstreamEvent.action == "add")
                .order_by(UpstreamEvent.id)
            )
        )


async def test_capabilities_are_probed_shown_and_overridable(
    client: httpx.AsyncClient, ours: Upstream, standard: Upstream
) -> None:
    shown = (await client.get(f"/admin/v1/providers/{ours.provider_id}", headers=AUTH)).json()
    assert (shown["request_id"], shown["status_by_request_id"], shown["webhooks"]) == (
        True,
        True,
        False,
    )
    assert shown["capabilities_pinned"] is False and shown["capabilities_checked_at"]
    plain = (await client.get(f"/admin/v1/providers/{standard.provider_id}", headers=AUTH)).json()
    assert (plain["request_id"], plain["status_by_request_id"], plain["webhooks"]) == (
        False,
        False,
        False,
    )
    patched = await client.patch(
        f"/admin/v1/providers/{ours.provider_id}", headers=AUTH, json={"request_id": False}
    )
    assert patched.status_code == 200
    assert (patched.json()["request_id"], patched.json()["capabilities_pinned"]) == (False, True)
    # A catalog import probes again, but a pinned provider keeps the operator's word.
    imported = await client.post(
        f"/admin/v1/providers/{ours.provider_id}/import", headers=AUTH, json={}
    )
    assert imported.status_code == 200
    again = (await client.get(f"/admin/v1/providers/{ours.provider_id}", headers=AUTH)).json()
    assert again["request_id"] is False


async def test_every_add_carries_the_orders_request_id(
    ctx: AppContext, settings: Settings, api: Api, make_user: MakeUser, ours: Upstream
) -> None:
    user = await make_user(balance="10")
    order_id = order_id_of(
        await api(user.key, "add", service=ours.service_id, link=LINK, quantity=100)
    )
    await run_jobs(settings, ctx)
    order = await order_row(ctx, order_id)
    assert order.upstream_state == "sent" and order.provider_order_id == "1"
    assert order.upstream_request_id == relay.request_id_for(order_id, order.created_at)
    async with ctx.db.session() as session:
        detail = await session.scalar(
            select(UpstreamEvent.detail).where(
                UpstreamEvent.order_id == order_id, UpstreamEvent.outcome == "attempt"
            )
        )
    assert detail is not None and detail["request"]["request_id"] == order.upstream_request_id


async def test_a_dropped_answer_is_sent_again_and_the_provider_has_one_order(
    ctx: AppContext, settings: Settings, api: Api, make_user: MakeUser, ours: Upstream
) -> None:
    user = await make_user(balance="10")
    await set_behaviour(ours.url, 1, behaviour="drop", timeout_seconds=1.0)
    order_id = order_id_of(
        await api(user.key, "add", service=ours.service_id, link=LINK, quantity=100)
    )
    await run_jobs(settings, ctx, read_timeout=0.5)
    order = await order_row(ctx, order_id)
    assert (order.status, order.upstream_state, order.provider_order_id) == (
        "Pending",
        "queued",
        None,
    )
    assert (await sandbox_stats(ours.url))["orders"] == 1  # created, answer lost
    await asyncio.sleep(0.6)  # the provider's answer to the first call is gone by now
    await make_due(ctx, order_id)
    await ctx.jobs.relay_due()
    await run_jobs(settings, ctx)
    order = await order_row(ctx, order_id)
    assert (order.status, order.upstream_state, order.provider_order_id) == (
        "In progress",
        "sent",
        "1",
    )
    stats = await sandbox_stats(ours.url)
    assert stats["orders"] == 1 and stats["duplicated_links"] == []
    assert stats["balances"]["sandbox-key"] == "999.96000"
    assert await outcomes(ctx, order_id) == ["attempt", "ProviderUnknownOutcome", "attempt", "sent"]
    await ledger_ok(ctx)


async def test_a_standard_provider_keeps_the_review_rule(
    ctx: AppContext, settings: Settings, api: Api, make_user: MakeUser, standard: Upstream
) -> None:
    user = await make_user(balance="10")
    await set_behaviour(standard.url, 1, behaviour="drop", timeout_seconds=1.0)
    order_id = order_id_of(
        await api(user.key, "add", service=standard.service_id, link=LINK, quantity=100)
    )
    await run_jobs(settings, ctx, read_timeout=0.5)
    order = await order_row(ctx, order_id)
    assert (order.upstream_state, order.upstream_request_id) == ("review", None)
    await call_job(settings, ctx, "sweep")
    assert (await order_row(ctx, order_id)).upstream_state == "review"


async def test_a_worker_dead_mid_send_is_sent_again_by_the_sweeper(
    ctx: AppContext, settings: Settings, api: Api, make_user: MakeUser, ours: Upstream
) -> None:
    user = await make_user(balance="10")
    order_id = order_id_of(
        await api(user.key, "add", service=ours.service_id, link=LINK, quantity=100)
    )
    # The attempt is claimed and the call made, then the worker dies before recording it.
    claims = await relay.claim_due(ctx.db, 10)
    assert [c.id for c in claims] == [order_id] and claims[0].upstream_request_id
    async with httpx.AsyncClient() as http:
        answer = await relay.send(
            claims[0], client_for(claims[0].provider, settings.secret_key, http)
        )
    assert answer == "1"
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Order)
            .where(Order.id == order_id)
            .values(sending_since=utcnow() - timedelta(seconds=settings.sending_stale_seconds + 1))
        )
    await call_job(settings, ctx, "sweep")
    await run_jobs(settings, ctx)
    order = await order_row(ctx, order_id)
    assert (order.upstream_state, order.provider_order_id) == ("sent", "1")
    assert (await sandbox_stats(ours.url))["orders"] == 1
    assert "stale_to_retry" in await outcomes(ctx, order_id)


async def test_orders_in_review_with_a_request_id_are_resolved_by_the_sweeper(
    ctx: AppContext, settings: Settings, api: Api, make_user: MakeUser, ours: Upstream
) -> None:
    user = await make_user(balance="10")
    order_id = order_id_of(
        await api(user.key, "add", service=ours.service_id, link=LINK, quantity=100)
    )
    other_id = order_id_of(
        await api(user.key, "add", service=ours.service_id, link=LINK + "2", quantity=100)
    )
    claims = await relay.claim_due(ctx.db, 10)
    async with httpx.AsyncClient() as http:
        for claim in claims:
            await relay.send(claim, client_for(claim.provider, settings.secret_key, http))
    # One was sent before the provider's capability was known: no request id, an
    # operator's question still.
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Order)
            .where(Order.id.in_([order_id, other_id]))
            .values(upstream_state="review", sending_since=None)
        )
        await session.execute(
            update(Order).where(Order.id == other_id).values(upstream_request_id=None)
        )
    await call_job(settings, ctx, "sweep")
    await run_jobs(settings, ctx)
    order = await order_row(ctx, order_id)
    assert (order.upstream_state, order.provider_order_id) == ("sent", "1")
    assert (await order_row(ctx, other_id)).upstream_state == "review"
    assert (await sandbox_stats(ours.url))["orders"] == 2
