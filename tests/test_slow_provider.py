"""A slow provider delays only its own orders.

The slow provider is a real HTTP server on loopback whose answers dribble in, one byte
every half second: every read gets a byte well within the read timeout, so before only
the end of the body ended a call. Now each call has a total deadline
(PROVIDER_TOTAL_TIMEOUT); the relay holds at most RELAY_PROVIDER_CONCURRENCY calls of
one provider; and each provider's status sync is a job of its own (`sync:provider:<id>`),
so a healthy provider's orders are relayed and synced meanwhile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

import pytest
from sqlalchemy import func, select, update

from app.context import AppContext
from app.flows import relay
from app.orders import service as orders
from app.orders.models import UP_SENT, Order
from app.providers.client import (
    ProviderClient,
    ProviderTransient,
    ProviderUnknownOutcome,
    build_http_client,
)
from app.sandbox.faulty import Dribbling
from app.settings import Settings
from tests.support.api import MakeService, MakeUser, Reseller
from tests.support.ledger import ledger_ok
from tests.support.scripted import ScriptedProvider, scripted_provider
from tests.support.upstream import call_job, register_provider, stop_worker
from workers.main import build_worker

DEADLINE = 3.0  # PROVIDER_TOTAL_TIMEOUT in these tests
READ_TIMEOUT = 10.0  # never reached: a byte comes every half second


@pytest.fixture
async def dribbling() -> AsyncIterator[Dribbling]:
    server = await Dribbling(interval=0.5).start()
    try:
        yield server
    finally:
        await server.stop()


async def test_a_dribbling_answer_ends_at_the_total_deadline(dribbling: Dribbling) -> None:
    http = build_http_client(read_timeout=READ_TIMEOUT, allow_private=True, total_timeout=DEADLINE)
    client = ProviderClient(dribbling.url, "k", http)
    try:
        started = time.monotonic()
        with pytest.raises(ProviderUnknownOutcome, match="total deadline"):
            await asyncio.wait_for(client.add({"service": "1", "link": "x"}), 30)
        with pytest.raises(ProviderTransient, match="total deadline"):
            await asyncio.wait_for(client.statuses(["1", "2"]), 30)
        elapsed = time.monotonic() - started
    finally:
        await http.aclose()
    assert 2 * DEADLINE <= elapsed < 2 * DEADLINE + 2
    assert dribbling.requests == {"add": 1, "status": 1}


async def place(
    ctx: AppContext, service_id: int, user: Reseller, count: int, first: int
) -> list[int]:
    async with ctx.db.transaction() as session:
        return [
            (
                await orders.place_order(
                    session,
                    user.user_id,
                    {
                        "service": str(service_id),
                        "link": f"https://x.y/{first + n}",
                        "quantity": "100",
                    },
                )
            ).order_id
            for n in range(count)
        ]


async def states(ctx: AppContext, ids: Sequence[int]) -> dict[str, int]:
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(Order.upstream_state, func.count())
            .where(Order.id.in_(ids))
            .group_by(Order.upstream_state)
        )
        return {state: count for state, count in rows.all()}


async def wait_for(check: object, seconds: float) -> float:
    """Poll until `check()` is true; the seconds it took (fails past `seconds`)."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if await check():  # type: ignore[operator]
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    pytest.fail(f"not done within {seconds} s")


async def two_providers(
    ctx: AppContext,
    settings: Settings,
    make_service: MakeService,
    dribbling: Dribbling,
    healthy: ScriptedProvider,
) -> tuple[int, int, int]:
    slow_id = await register_provider(ctx, settings, dribbling.url.removesuffix("/api/v2"))
    services = [
        await make_service(
            rate=Decimal("1.00"), min_quantity=10, provider_id=p, provider_service_id="1"
        )
        for p in (slow_id, healthy.provider_id)
    ]
    return slow_id, services[0], services[1]


async def test_a_slow_provider_holds_only_its_own_share_of_the_relay(
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    dribbling: Dribbling,
) -> None:
    user = await make_user(balance="1000")
    async with scripted_provider(ctx, settings, name="Healthy") as healthy:
        _, slow_service, healthy_service = await two_providers(
            ctx, settings, make_service, dribbling, healthy
        )
        # More slow orders than the worker has slots, and due first.
        slow = await place(ctx, slow_service, user, 80, 0)
        fast = await place(ctx, healthy_service, user, 20, 1000)
        settings = settings.model_copy(update={"provider_total_timeout": DEADLINE})
        http = build_http_client(
            read_timeout=READ_TIMEOUT, allow_private=True, total_timeout=DEADLINE
        )
        slots = relay.SendSlots(settings.relay_concurrency, http)
        run = asyncio.create_task(relay.relay_due(ctx.db, settings, slots, max_seconds=5))
        try:

            async def healthy_sent() -> bool:
                return await states(ctx, fast) == {"sent": 20}

            took = await wait_for(healthy_sent, DEADLINE)
            # The slow provider's calls in flight: its room, never every slot.
            assert dribbling.requests["add"] == settings.relay_provider_concurrency
            await run
        finally:
            run.cancel()
            await slots.aclose()
            await http.aclose()
    assert took < DEADLINE / 2
    # The slow provider's orders came to their deadline: outcome unknown, for the
    # operator (it takes no request ids), never resent blindly.
    assert (await states(ctx, slow)).get("review", 0) >= settings.relay_provider_concurrency
    assert len(healthy.adds) == 20
    await ledger_ok(ctx)


async def test_each_provider_is_synced_in_its_own_job(
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    dribbling: Dribbling,
) -> None:
    user = await make_user(balance="1000")
    async with scripted_provider(ctx, settings, name="Healthy") as healthy:
        slow_id, slow_service, healthy_service = await two_providers(
            ctx, settings, make_service, dribbling, healthy
        )
        slow = await place(ctx, slow_service, user, 5, 0)
        fast = await place(ctx, healthy_service, user, 5, 1000)
        async with ctx.db.transaction() as session:
            await session.execute(
                update(Order)
                .where(Order.id.in_([*slow, *fast]))
                .values(
                    upstream_state=UP_SENT,
                    status="In progress",
                    provider_order_id=func.cast(Order.id, Order.provider_order_id.type),
                    next_attempt_at=None,
                )
            )
        healthy.statuses = {str(i): '{"status": "Completed", "remains": "0"}' for i in fast}
        # The cron only enqueues, one job per provider.
        assert await call_job(settings, ctx, "sync_statuses") == {"queued": 2}
        http = build_http_client(
            read_timeout=READ_TIMEOUT, allow_private=True, total_timeout=DEADLINE
        )
        worker = build_worker(settings, burst=True, ctx={"db": ctx.db, "http": http})
        working = asyncio.create_task(worker.run_check())
        try:

            async def healthy_synced() -> bool:
                async with ctx.db.session() as session:
                    done = await session.scalar(
                        select(func.count(Order.id)).where(
                            Order.id.in_(fast), Order.status == "Completed"
                        )
                    )
                return done == 5

            took = await wait_for(healthy_synced, DEADLINE)
            # The slow provider's sync still runs: the cron enqueues no second one.
            assert await call_job(settings, ctx, "sync_statuses") == {"queued": 1}
            await working
        finally:
            working.cancel()
            await stop_worker(worker)
            await http.aclose()
    assert took < DEADLINE / 2
    assert dribbling.requests["status"] == 1
    async with ctx.db.session() as session:
        still = await session.scalar(
            select(func.count(Order.id)).where(Order.id.in_(slow), Order.status == "In progress")
        )
    assert still == 5  # its answer never came whole: nothing applied
    assert slow_id != healthy.provider_id
    await ledger_ok(ctx)
