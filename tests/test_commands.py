"""The commands every front end calls (app/flows/commands), on their own: a refused command
leaves the caller's transaction as it found it, jobs follow the commit and never a
rollback, a multi-item command settles each item on its own; and a relay kick that cannot
be made names its order."""

from __future__ import annotations

import logging
from decimal import Decimal

import httpx
import pytest
from arq.connections import ArqRedis
from fastapi import FastAPI
from redis.asyncio import ConnectionPool
from sqlalchemy import func, select

from app.accounts.models import User
from app.context import AppContext
from app.errors import IncorrectOrderId, NotEnoughFunds
from app.flows.commands import ordering
from app.http.tx import AfterCommitJobs, Jobs, Tx
from app.jobs import JobQueue
from app.ledger.models import LedgerEntry
from app.orders.models import IN_PROGRESS, PENDING, UP_MANUAL, UP_SENT, Order
from app.orders.service import OrderNotCancelable
from tests.support.api import MakeService, MakeUser
from tests.support.ledger import ledger_ok


class Refused(Exception):
    """The caller's own failure after a command succeeded: its transaction rolls back."""


async def rows(ctx: AppContext, user_id: int) -> tuple[int, int, Decimal]:
    """(orders, ledger entries, balance) of a user."""
    async with ctx.db.session() as session:
        placed = await session.scalar(select(func.count(Order.id)).where(Order.user_id == user_id))
        entries = await session.scalar(
            select(func.count(LedgerEntry.id)).where(LedgerEntry.user_id == user_id)
        )
        balance = await session.scalar(select(User.balance).where(User.id == user_id))
    assert placed is not None and entries is not None and balance is not None
    return placed, entries, balance


async def queued(ctx: AppContext) -> list[str]:
    assert ctx.jobs.redis is not None
    prefix = f"{ctx.jobs.queue_name}:"
    return [
        job.decode().removeprefix(prefix)
        for job in await ctx.jobs.redis.zrange(ctx.jobs.queue_name, 0, -1)
    ]


async def an_order(ctx: AppContext, user_id: int, service_id: int, **values: object) -> int:
    async with ctx.db.transaction() as session:
        order = Order(
            user_id=user_id,
            service_id=service_id,
            type="Default",
            link=f"https://x.com/{len(values)}-{service_id}",
            link_normalized=f"x.com/{len(values)}-{service_id}",
            quantity=1000,
            rate=Decimal("0.9"),
            charge=Decimal("0.9"),
            status=values.pop("status", PENDING),
            upstream_state=values.pop("upstream_state", UP_MANUAL),
        )
        session.add(order)
    return order.id


async def test_a_refused_order_leaves_the_callers_transaction_as_it_was(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    """The order row goes in before the debit refuses it: the caller that answers the
    refusal and commits (a form shown again) commits nothing of the order."""
    user = await make_user("0.05")
    sid = await make_service(rate=Decimal("1"), min_quantity=10)
    fields = {"service": str(sid), "link": "https://x.com/poor", "quantity": "100"}
    async with ctx.db.transaction() as tx:
        jobs = AfterCommitJobs(tx, ctx.jobs)
        with pytest.raises(NotEnoughFunds):
            await ordering.place_order(tx, jobs, user.user_id, fields)
    assert await rows(ctx, user.user_id) == (0, 1, Decimal("0.05"))  # the deposit alone
    await ledger_ok(ctx)


async def test_a_cancels_upstream_job_is_queued_after_the_commit_and_never_on_rollback(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    assert ctx.jobs.redis is not None
    await ctx.jobs.redis.flushdb()
    user = await make_user("10")
    sid = await make_service()
    kept = await an_order(ctx, user.user_id, sid, status=IN_PROGRESS, upstream_state=UP_SENT)
    dropped = await an_order(
        ctx, user.user_id, sid, status=IN_PROGRESS, upstream_state=UP_SENT, other=1
    )
    with pytest.raises(Refused):
        async with ctx.db.transaction() as tx:
            jobs = AfterCommitJobs(tx, ctx.jobs)
            await ordering.cancel_order(tx, jobs, user.user_id, dropped)
            assert await queued(ctx) == []  # not before the commit
            raise Refused()
    async with ctx.db.transaction() as tx:
        jobs = AfterCommitJobs(tx, ctx.jobs)
        made = await ordering.cancel_order(tx, jobs, user.user_id, kept)
        assert await queued(ctx) == []
    assert made == ordering.CancelRequested(kept, (kept,))
    assert await queued(ctx) == [f"cancel:order:{kept}"]
    await ctx.jobs.redis.flushdb()


async def test_cancel_orders_settles_each_order_on_its_own(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user, stranger = await make_user("10"), await make_user("10")
    sid = await make_service()
    unsent = await an_order(ctx, user.user_id, sid)
    theirs = await an_order(ctx, stranger.user_id, sid)
    done = await an_order(ctx, user.user_id, sid, status="Completed", upstream_state=UP_SENT)
    async with ctx.db.transaction() as tx:
        jobs = AfterCommitJobs(tx, ctx.jobs)
        results = await ordering.cancel_orders(tx, jobs, user.user_id, [theirs, unsent, done])
    assert [type(r) for r in results] == [
        IncorrectOrderId,
        ordering.CancelRequested,
        OrderNotCancelable,
    ]
    assert results[1] == ordering.CancelRequested(unsent, ())  # withdrawn, nothing upstream
    async with ctx.db.session() as session:
        order = await session.get(Order, unsent)
        assert order is not None and (order.status, order.refunded) == ("Canceled", Decimal("0.9"))
    # The deposit and the refund of the one order withdrawn (the orders were made
    # without their charge: only what the command did is counted).
    assert await rows(ctx, user.user_id) == (2, 2, Decimal("10.9"))


async def test_a_relay_kick_that_cannot_be_made_names_its_order(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on port 1: Redis is down for this queue.
    down = ArqRedis(ConnectionPool.from_url("redis://127.0.0.1:1/0"))
    queue = JobQueue(down, "kick:test")
    with caplog.at_level(logging.WARNING, logger="app.jobs"):
        assert await queue.relay_order(42) is False
    failed = [r for r in caplog.records if r.getMessage() == "enqueue failed"]
    assert [getattr(r, "order_id", None) for r in failed] == [42]
    await down.aclose()


async def test_a_handlers_jobs_are_the_after_commit_queue_of_its_own_transaction(
    ctx: AppContext,
) -> None:
    """`jobs: Jobs` and `tx: Tx` in one handler are one transaction: a job is never
    enqueued after some other commit than the one of the rows it names."""
    api = FastAPI()
    api.state.ctx = ctx

    @api.get("/same")
    async def same(tx: Tx, jobs: Jobs) -> dict[str, bool]:
        return {"same": jobs.session is tx and jobs.queue is ctx.jobs}

    transport = httpx.ASGITransport(app=api)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        assert (await client.get("/same")).json() == {"same": True}
