"""Refunds never deadlock: users before orders, each set by ascending id, in every
transaction that touches more than one (docs/architecture.md, "Lock order").

A few big resellers with many orders ending Partial or Canceled upstream, two providers
synced at once whose pages list the same users in opposite orders, and the resellers
canceling meanwhile through API v2. Before, each page refunded inside one transaction,
locking the users as its orders came: PostgreSQL aborted one of two pages with
`deadlock detected` about once a second, and API v2 `cancel` answered 503."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text, update

from app.context import AppContext
from app.flows import sync
from app.ledger.models import LedgerEntry
from app.orders import service as orders
from app.orders.models import UP_SENT, Order
from app.providers.client import ProviderClient, build_http_client
from app.settings import Settings
from tests.support.api import Api, MakeService, MakeUser, Reseller
from tests.support.ledger import ledger_ok
from tests.support.scripted import ScriptedProvider, scripted_provider

PER_PROVIDER = 300  # three pages of 100 each
QUANTITY = 100
LINKS = itertools.count()


async def deadlocks(ctx: AppContext) -> int:
    """pg_stat_database.deadlocks of the test's database. A backend reports its counts
    when it ends: the pool's connections are closed first, so every count is in."""
    await ctx.db.engine.dispose()
    await asyncio.sleep(0.5)
    async with ctx.db.session() as session:
        found = await session.scalar(
            text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        )
    return int(found or 0)


async def place(ctx: AppContext, service_id: int, owners: Sequence[Reseller]) -> list[int]:
    """One order per owner given, in that order (ids ascending as given)."""
    placed: list[int] = []
    async with ctx.db.transaction() as session:
        for owner in owners:
            n = next(LINKS)
            order = await orders.place_order(
                session,
                owner.user_id,
                {"service": str(service_id), "link": f"https://x.y/{n}", "quantity": str(QUANTITY)},
            )
            placed.append(order.order_id)
    return placed


async def mark_sent(ctx: AppContext, provider: ScriptedProvider, order_ids: list[int]) -> None:
    """Sent upstream as upstream order `<our id>`; every one ends Partial or Canceled."""
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Order)
            .where(Order.id.in_(order_ids))
            .values(
                upstream_state=UP_SENT,
                status="In progress",
                provider_order_id=func.cast(Order.id, Order.provider_order_id.type),
                next_attempt_at=None,
            )
        )
    for n, order_id in enumerate(order_ids):
        provider.statuses[str(order_id)] = (
            '{"status": "Partial", "remains": "40"}' if n % 2 else '{"status": "Canceled"}'
        )


async def test_concurrent_refunding_pages_of_several_users_never_deadlock(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    users = [await make_user(balance="1000") for _ in range(3)]
    async with (
        scripted_provider(ctx, settings, name="First") as first,
        scripted_provider(ctx, settings, name="Second") as second,
    ):
        services = [
            await make_service(
                rate=Decimal("1.00"),
                min_quantity=10,
                provider_id=p.provider_id,
                provider_service_id="1",
            )
            for p in (first, second)
        ]
        # The first provider's pages meet the users as A, B, C, A…; the second's as C, B, A.
        a_first = await place(ctx, services[0], [users[n % 3] for n in range(PER_PROVIDER)])
        c_first = await place(ctx, services[1], [users[2 - n % 3] for n in range(PER_PROVIDER)])
        await mark_sent(ctx, first, a_first)
        await mark_sent(ctx, second, c_first)
        # Orders never sent, canceled by their owners while the pages are applied.
        unsent = {
            u.user_id: await place(ctx, services[n % 2], [u] * 20) for n, u in enumerate(users)
        }
        async with ctx.db.session() as session:
            owner_of = {
                row.id: row.user_id
                for row in await session.execute(select(Order.id, Order.user_id))
            }
        before = await deadlocks(ctx)

        async def cancel(user: Reseller) -> list[object]:
            sent = [i for i in (*a_first, *c_first) if owner_of[i] == user.user_id][::7]
            # Highest id first, sent and never sent mixed: the locks follow ids anyway.
            asked = sorted([*sent[:20], *unsent[user.user_id]], reverse=True)
            answer: list[object] = await api(user.key, "cancel", orders=",".join(map(str, asked)))
            return answer

        http = build_http_client(allow_private=True)
        try:
            clients = [
                ProviderClient(f"{p.url}/api/v2", "sandbox-key", http) for p in (first, second)
            ]
            with caplog.at_level("WARNING", logger="app.flows.sync"):
                results = await asyncio.gather(
                    sync.sync_provider(ctx.db, clients[0], first.provider_id),
                    sync.sync_provider(ctx.db, clients[1], second.provider_id),
                    *(cancel(u) for u in users),
                )
        finally:
            await http.aclose()
    synced: list[sync.SyncResult] = [r for r in results if isinstance(r, sync.SyncResult)]
    assert not [r.getMessage() for r in caplog.records if "deadlock" in r.getMessage()]
    assert await deadlocks(ctx) - before == 0
    # Every page applied in one pass: each order canceled by its owner or ended upstream.
    assert [r.errors for r in synced] == [0, 0]
    async with ctx.db.session() as session:
        still = await session.scalar(
            select(func.count(Order.id)).where(
                Order.id.in_([*a_first, *c_first]), Order.status == "In progress"
            )
        )
        refunds = await session.scalar(
            select(func.count(LedgerEntry.id)).where(LedgerEntry.kind == "refund")
        )
    assert still == 0
    # One refund per order: 2 × 300 ended upstream, 60 canceled before sending.
    assert refunds == 2 * PER_PROVIDER + 60
    await ledger_ok(ctx)
