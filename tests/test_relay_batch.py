"""Relaying in batches and applying status reports in bulk, against the real sandbox."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from app.context import AppContext
from app.flows import sync
from app.ledger.models import LedgerEntry
from app.orders.models import Order, UpstreamEvent
from app.providers.client import ProviderOrderStatus, ProviderTransient
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from tests.support.api import Api, MakeService, MakeUser
from tests.support.ledger import ledger_ok
from tests.support.upstream import (
    call_job,
    register_provider,
    run_jobs,
    sandbox,
    sandbox_stats,
    set_behaviour,
    sync_statuses,
    upstream_states,
)


@pytest.fixture
async def upstream(ctx: AppContext, settings: Settings) -> AsyncIterator[dict[str, Any]]:
    config = SandboxConfig(
        services=[
            SandboxService(1, "Followers", rate=Decimal("0.40"), min=10, max=100_000),
            SandboxService(2, "Likes", rate=Decimal("0.40"), min=10, max=100_000),
            SandboxService(3, "Views", rate=Decimal("0.40"), min=10, max=100_000),
        ],
        seconds_to_start=0,
        seconds_to_complete=0,
        refill_seconds=0,
    )
    async with sandbox(config) as (url, app):
        yield {"url": url, "app": app, "provider_id": await register_provider(ctx, settings, url)}


@pytest.fixture
async def services(make_service: MakeService, upstream: dict[str, Any]) -> list[int]:
    """Our services mapped to the sandbox's 1, 2 and 3."""
    return [
        await make_service(
            name=f"Service {n}",
            rate=Decimal("0.90"),
            min_quantity=10,
            provider_id=upstream["provider_id"],
            provider_service_id=str(n),
            provider_rate=Decimal("0.40"),
        )
        for n in (1, 2, 3)
    ]


async def place(api: Api, key: str, service: int, count: int, start: int = 0) -> list[int]:
    ids = []
    for n in range(start, start + count):
        answer = await api(key, "add", service=service, link=f"https://x.com/{n}", quantity=100)
        ids.append(answer["order"])
    return ids


async def events(ctx: AppContext, order_id: int) -> list[tuple[str, str]]:
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(UpstreamEvent.action, UpstreamEvent.outcome)
            .where(UpstreamEvent.order_id == order_id)
            .order_by(UpstreamEvent.id)
        )
        return [(r[0], r[1]) for r in rows]


async def refunds(ctx: AppContext) -> dict[int, Decimal]:
    async with ctx.db.session() as session:
        rows = (
            await session.execute(
                select(LedgerEntry.order_id, LedgerEntry.amount).where(LedgerEntry.kind == "refund")
            )
        ).all()
    out: dict[int, Decimal] = {}
    for order_id, amount in rows:
        assert order_id is not None and order_id not in out  # at most one refund per order
        out[order_id] = amount
    return out


async def test_one_job_relays_many_orders_in_batches_with_their_costs(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    services: list[int],
    upstream: dict[str, Any],
) -> None:
    user = await make_user(balance="100")
    ids = await place(api, user.key, services[0], 40)
    # Four slots: the job claims and sends in many rounds, never more than four at once.
    narrow = settings.model_copy(update={"relay_concurrency": 4})
    assert await call_job(narrow, ctx, "relay_due_orders") == {"sent": 40}
    assert await upstream_states(ctx) == ["sent"] * 40
    assert (await sandbox_stats(upstream["url"]))["add_calls"] == {"1": 40}
    async with ctx.db.session() as session:
        rows = (
            await session.execute(
                select(
                    Order.status,
                    Order.provider_order_id,
                    Order.provider_charge,
                    Order.provider_currency,
                    Order.fx_rate,
                    Order.sending_since,
                ).order_by(Order.id)
            )
        ).all()
    assert {r.status for r in rows} == {"In progress"}
    assert sorted(int(r.provider_order_id) for r in rows) == list(range(1, 41))
    assert {(r.provider_charge, r.provider_currency, r.fx_rate) for r in rows} == {
        (Decimal("0.04"), "USD", Decimal(1))
    }
    assert {r.sending_since for r in rows} == {None}
    for order_id in ids:
        assert await events(ctx, order_id) == [("add", "attempt"), ("add", "sent")]
    # Nothing is due any more: another run claims nothing and sends nothing.
    assert await call_job(narrow, ctx, "relay_due_orders") == {}
    assert (await sandbox_stats(upstream["url"]))["add_calls"] == {"1": 40}


async def test_concurrent_relay_runs_never_send_an_order_twice(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    services: list[int],
    upstream: dict[str, Any],
) -> None:
    user = await make_user(balance="100")
    await place(api, user.key, services[0], 60)
    narrow = settings.model_copy(update={"relay_concurrency": 8})
    runs = await asyncio.gather(*(call_job(narrow, ctx, "relay_due_orders") for _ in range(3)))
    assert sum(run.get("sent", 0) for run in runs) == 60
    assert await upstream_states(ctx) == ["sent"] * 60
    assert (await sandbox_stats(upstream["url"]))["add_calls"] == {"1": 60}


async def test_a_batch_with_a_timeout_and_a_refusal_records_each_outcome(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    services: list[int],
    upstream: dict[str, Any],
) -> None:
    user = await make_user(balance="100")
    await set_behaviour(upstream["url"], 2, behaviour="timeout", timeout_seconds=5)
    await set_behaviour(upstream["url"], 3, behaviour="reject", error="Incorrect link")
    sent = await place(api, user.key, services[0], 5)
    (hanging,) = await place(api, user.key, services[1], 1, start=5)
    (refused,) = await place(api, user.key, services[2], 1, start=6)
    assert await api(user.key, "balance") == {"balance": "99.37000", "currency": "USD"}
    await run_jobs(settings, ctx, read_timeout=0.5)
    # upstream_states lists every order's state by id.
    placed = sorted([*sent, hanging, refused])
    states = dict(zip(placed, await upstream_states(ctx), strict=True))
    assert [states[i] for i in sent] == ["sent"] * 5
    # Unknown outcome: to review, never resent; the others went through regardless.
    assert states[hanging] == "review"
    assert await events(ctx, hanging) == [("add", "attempt"), ("add", "ProviderUnknownOutcome")]
    # Refused for good: canceled with a full refund.
    assert states[refused] == "rejected"
    assert await refunds(ctx) == {refused: Decimal("0.09")}
    # Sweeps and later runs leave the one in review alone.
    await call_job(settings, ctx, "sweep")
    await run_jobs(settings, ctx, read_timeout=0.5)
    assert (await sandbox_stats(upstream["url"]))["add_calls"] == {"1": 5, "2": 1, "3": 1}
    assert await api(user.key, "balance") == {"balance": "99.46000", "currency": "USD"}
    await ledger_ok(ctx)


async def test_kicks_of_a_burst_collapse_into_few_jobs(ctx: AppContext) -> None:
    assert ctx.jobs.redis is not None
    await ctx.jobs.redis.flushdb()
    for order_id in range(1, 201):
        await ctx.jobs.relay_order(order_id)
    queued = await ctx.jobs.redis.zrange(ctx.jobs.queue_name, 0, -1)
    # One job per slot of time the burst spanned, not one per order.
    assert 1 <= len(queued) < 50
    assert all(job_id.decode().startswith(f"{ctx.jobs.queue_name}:relay:due:") for job_id in queued)
    await ctx.jobs.redis.flushdb()


async def test_bulk_status_sync_applies_changes_once_and_refunds_exactly_once(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    services: list[int],
    upstream: dict[str, Any],
) -> None:
    user = await make_user(balance="100")
    config = upstream["app"].state.sandbox.config
    config.seconds_to_complete = 3600  # in progress upstream, remains steady for a while
    await set_behaviour(upstream["url"], 2, behaviour="partial", partial_percent=40)
    await set_behaviour(upstream["url"], 3, behaviour="cancel")
    completing = await place(api, user.key, services[0], 150)  # more than one page
    partial = await place(api, user.key, services[1], 3, start=150)
    canceled = await place(api, user.key, services[2], 2, start=153)
    await run_jobs(settings, ctx)
    assert await upstream_states(ctx) == ["sent"] * 155
    # Pending → In progress with start count and remains: changed once, then steady.
    assert await sync_statuses(settings, ctx) == {
        "checked": 155,
        "changed": 155,
        "errors": 0,
    }
    assert await sync_statuses(settings, ctx) == {
        "checked": 155,
        "changed": 0,
        "errors": 0,
    }
    status = await api(user.key, "status", order=completing[0])
    assert (status["status"], status["remains"], status["start_count"]) == (
        "In progress",
        "100",
        "8919",
    )
    # Everything ends upstream; duplicate reports afterwards change nothing.
    config.seconds_to_complete = 0
    assert await sync_statuses(settings, ctx) == {
        "checked": 155,
        "changed": 155,
        "errors": 0,
    }
    for _ in range(2):
        assert await sync_statuses(settings, ctx) == {
            "checked": 0,
            "changed": 0,
            "errors": 0,
        }
    async with ctx.db.session() as session:
        ended = {
            row.id: (row.status, row.remains)
            for row in await session.execute(select(Order.id, Order.status, Order.remains))
        }
    assert {ended[i] for i in completing} == {("Completed", 0)}
    assert {ended[i] for i in partial} == {("Partial", 60)}
    assert {ended[i] for i in canceled} == {("Canceled", 100)}
    # Partial: 60 of 100 remain, 0.054 back; Canceled: all 0.09 back. Once each.
    expected = {i: Decimal("0.054") for i in partial} | {i: Decimal("0.09") for i in canceled}
    assert await refunds(ctx) == expected
    assert await events(ctx, completing[0]) == [
        ("add", "attempt"),
        ("add", "sent"),
        ("status", "In progress"),
        ("status", "Completed"),
    ]
    # 100 − 155 × 0.09 + 3 × 0.054 + 2 × 0.09
    assert await api(user.key, "balance") == {"balance": "86.39200", "currency": "USD"}
    await ledger_ok(ctx)


async def test_stale_reports_never_move_a_final_order_nor_refund_twice(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    services: list[int],
    upstream: dict[str, Any],
) -> None:
    user = await make_user(balance="10")
    await set_behaviour(upstream["url"], 2, behaviour="partial", partial_percent=40)
    (done,) = await place(api, user.key, services[0], 1)
    (partial,) = await place(api, user.key, services[1], 1, start=1)
    (failing,) = await place(api, user.key, services[0], 1, start=2)
    await run_jobs(settings, ctx)
    # A page read before the orders ended, applied twice with reports that disagree.
    rows = {"1": (done, "In progress", None, None), "2": (partial, "In progress", None, None)}
    rows["3"] = (failing, "In progress", None, None)
    answers: dict[str, ProviderOrderStatus | Any] = {
        "1": ProviderOrderStatus("Completed", start_count=5, remains=0),
        "2": ProviderOrderStatus("Partial", start_count=5, remains=60),
        "3": ProviderTransient("Incorrect order ID"),
    }
    first = sync.SyncResult()
    await sync.apply_batch(ctx.db, rows, answers, first)
    assert (first.changed, first.errors) == (2, 1)
    answers["1"] = ProviderOrderStatus("In progress", start_count=7, remains=50)
    answers["2"] = ProviderOrderStatus("Canceled")
    again = sync.SyncResult()
    await sync.apply_batch(ctx.db, rows, answers, again)
    assert (again.changed, again.errors) == (0, 1)
    async with ctx.db.session() as session:
        orders = {
            o.id: (o.status, o.remains, o.start_count)
            for o in await session.scalars(select(Order).order_by(Order.id))
        }
        errors = await session.scalar(
            select(func.count(UpstreamEvent.id)).where(UpstreamEvent.outcome == "error")
        )
    assert orders[done] == ("Completed", 0, 5)
    assert orders[partial] == ("Partial", 60, 5)
    assert orders[failing] == ("In progress", None, None)
    assert errors == 2
    assert await refunds(ctx) == {partial: Decimal("0.054")}
    await ledger_ok(ctx)


async def test_a_run_started_while_another_claims_leaves_its_orders_to_it(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    services: list[int],
    upstream: dict[str, Any],
) -> None:
    from app.flows import relay
    from app.providers.client import build_http_client

    user = await make_user(balance="100")
    await place(api, user.key, services[0], 30)
    http = build_http_client(
        connect_timeout=2, read_timeout=10, allow_private=settings.provider_allow_private
    )
    slots = relay.SendSlots(4, http)
    try:
        first = asyncio.create_task(relay.relay_due(ctx.db, settings, slots))
        await asyncio.sleep(0)  # the first run is claiming
        assert slots.claiming
        second = await relay.relay_due(ctx.db, settings, slots)
        assert (second.claims, dict(second.outcomes)) == (0, {})
        assert dict((await first).outcomes) == {"sent": 30}
        assert not slots.claiming
    finally:
        await slots.aclose()
        await http.aclose()
    assert await upstream_states(ctx) == ["sent"] * 30
    assert (await sandbox_stats(upstream["url"]))["add_calls"] == {"1": 30}
