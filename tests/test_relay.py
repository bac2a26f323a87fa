"""Orders flowing to a real provider (the sandbox over HTTP) and back, via arq jobs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update

from app.context import AppContext
from app.ledger.models import LedgerEntry
from app.orders.models import Order, UpstreamEvent
from app.refills.models import Refill
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.ledger import ledger_ok
from tests.support.upstream import (
    call_job,
    register_provider,
    run_jobs,
    sandbox,
    sandbox_stats,
    set_behaviour,
    sync_statuses,
)

LINK = "https://instagram.com/relay"


@pytest.fixture
async def upstream(ctx: AppContext, settings: Settings) -> AsyncIterator[dict[str, Any]]:
    config = SandboxConfig(
        services=[
            SandboxService(1, "Followers", rate=Decimal("0.40"), min=10, max=100_000),
            SandboxService(2, "Drip", rate=Decimal("0.40"), min=10, max=100_000, dripfeed=True),
            SandboxService(
                3,
                "Auto likes",
                type="Subscriptions",
                rate=Decimal("0.10"),
                min=10,
                max=1000,
                behaviour="partial",
                partial_percent=40,
            ),
        ],
        seconds_to_start=0,
        seconds_to_complete=0,
        refill_seconds=0,
    )
    async with sandbox(config) as (url, app):
        yield {"url": url, "app": app, "provider_id": await register_provider(ctx, settings, url)}


@pytest.fixture
async def relayed_service(make_service: MakeService, upstream: dict[str, Any]) -> int:
    sid: int = await make_service(
        rate=Decimal("0.90"),
        min_quantity=10,
        provider_id=upstream["provider_id"],
        provider_service_id="1",
        provider_rate=Decimal("0.40"),
    )
    return sid


@pytest.fixture
async def drip_service(make_service: MakeService, upstream: dict[str, Any]) -> int:
    """A drip-feed service the panel keeps itself, relayed run by run to service 1."""
    sid: int = await make_service(
        rate=Decimal("1.00"),
        min_quantity=10,
        dripfeed=True,
        provider_id=upstream["provider_id"],
        provider_service_id="1",
    )
    return sid


async def order_row(ctx: AppContext, order_id: int) -> Order:
    async with ctx.db.session() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        return order


async def runs_of(ctx: AppContext, parent_id: int) -> list[int]:
    """The ids of a drip-feed order's runs, in run order."""
    async with ctx.db.session() as session:
        return list(
            await session.scalars(
                select(Order.id).where(Order.parent_id == parent_id).order_by(Order.id)
            )
        )


async def refunds(ctx: AppContext) -> list[tuple[int | None, Decimal]]:
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(LedgerEntry.order_id, LedgerEntry.amount)
            .where(LedgerEntry.kind == "refund")
            .order_by(LedgerEntry.id)
        )
        return [(r[0], r[1]) for r in rows]


async def test_order_relayed_and_completed_end_to_end(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    relayed_service: int,
    upstream: dict[str, Any],
) -> None:
    user = await make_user(balance="10")
    order_id = order_id_of(
        await api(user.key, "add", service=relayed_service, link=LINK, quantity=1000)
    )
    assert await run_jobs(settings, ctx) == 1
    order = await order_row(ctx, order_id)
    assert (order.status, order.upstream_state, order.provider_order_id) == (
        "In progress",
        "sent",
        "1",
    )
    assert (await sandbox_stats(upstream["url"]))["add_calls"] == {"1": 1}
    result = await sync_statuses(settings, ctx)
    assert result == {"checked": 1, "changed": 1, "errors": 0}
    status = await api(user.key, "status", order=order_id)
    assert status == {
        "charge": "0.90000",
        "start_count": "8919",
        "status": "Completed",
        "remains": "0",
        "currency": "USD",
    }
    # Nothing left to sync; a second pass changes nothing.
    assert await sync_statuses(settings, ctx) == {
        "checked": 0,
        "changed": 0,
        "errors": 0,
    }
    assert await api(user.key, "balance") == {"balance": "9.10000", "currency": "USD"}
    await ledger_ok(ctx)


async def test_partial_and_canceled_refunded_exactly_once(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    relayed_service: int,
    upstream: dict[str, Any],
) -> None:
    user = await make_user(balance="10")
    await set_behaviour(upstream["url"], 1, behaviour="partial", partial_percent=37)
    first = order_id_of(  # 0.27810
        await api(user.key, "add", service=relayed_service, link=LINK, quantity=309)
    )
    await run_jobs(settings, ctx)
    await sync_statuses(settings, ctx)
    # delivered 37 % of 309 = 114, remains 195: 195 × 0.2781 / 309 = 0.1755 exactly
    assert await api(user.key, "status", order=first) == {
        "charge": "0.27810",
        "start_count": "8919",
        "status": "Partial",
        "remains": "195",
        "currency": "USD",
    }
    await set_behaviour(upstream["url"], 1, behaviour="cancel")
    second = order_id_of(  # 0.90
        await api(user.key, "add", service=relayed_service, link=LINK + "2", quantity=1000)
    )
    await run_jobs(settings, ctx)
    for _ in range(3):  # duplicate reports change nothing
        await sync_statuses(settings, ctx)
    assert (await api(user.key, "status", order=second))["status"] == "Canceled"
    assert await refunds(ctx) == [(first, Decimal("0.1755")), (second, Decimal("0.9"))]
    assert await api(user.key, "balance") == {"balance": "9.89740", "currency": "USD"}
    await ledger_ok(ctx)


async def test_permanent_rejection_cancels_with_full_refund(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    relayed_service: int,
    upstream: dict[str, Any],
) -> None:
    user = await make_user(balance="10")
    await set_behaviour(upstream["url"], 1, behaviour="reject", error="Incorrect link")
    order_id = order_id_of(
        await api(user.key, "add", service=relayed_service, link=LINK, quantity=1000)
    )
    await run_jobs(settings, ctx)
    order = await order_row(ctx, order_id)
    assert (order.status, order.upstream_state, order.last_error) == (
        "Canceled",
        "rejected",
        "Incorrect link",
    )
    assert await api(user.key, "balance") == {"balance": "10.00000", "currency": "USD"}
    await ledger_ok(ctx)


async def test_provider_out_of_funds_is_retried_later_not_canceled(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    relayed_service: int,
    upstream: dict[str, Any],
) -> None:
    from app.metrics import PROVIDER_ALERTS

    alerts = PROVIDER_ALERTS.labels(str(upstream["provider_id"]), "insufficient_funds")
    before = alerts._value.get()
    user = await make_user(balance="10")
    await set_behaviour(upstream["url"], 1, behaviour="reject", error="Not enough funds on balance")
    order_id = order_id_of(
        await api(user.key, "add", service=relayed_service, link=LINK, quantity=1000)
    )
    await run_jobs(settings, ctx)
    order = await order_row(ctx, order_id)
    assert (order.status, order.upstream_state, order.attempts) == ("Pending", "queued", 1)
    assert order.next_attempt_at is not None and order.last_error == "Not enough funds on balance"
    assert alerts._value.get() == before + 1
    # The provider is topped up; once due, the sweeper sends it again.
    await set_behaviour(upstream["url"], 1, behaviour="complete")
    async with ctx.db.transaction() as session:
        await session.execute(update(Order).values(next_attempt_at=func.now()))
    assert (await call_job(settings, ctx, "sweep"))["orders"] == 1
    await run_jobs(settings, ctx)
    assert (await order_row(ctx, order_id)).upstream_state == "sent"
    assert await api(user.key, "balance") == {"balance": "9.10000", "currency": "USD"}


@pytest.mark.parametrize("behaviour", ["http500", "malformed", "timeout"])
async def test_unknown_outcome_goes_to_review_and_is_never_resent(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    relayed_service: int,
    upstream: dict[str, Any],
    behaviour: str,
) -> None:
    user = await make_user(balance="10")
    await set_behaviour(upstream["url"], 1, behaviour=behaviour, timeout_seconds=5)
    order_id = order_id_of(
        await api(user.key, "add", service=relayed_service, link=LINK, quantity=1000)
    )
    await run_jobs(settings, ctx, read_timeout=0.5)
    order = await order_row(ctx, order_id)
    assert (order.status, order.upstream_state) == ("Pending", "review")
    # Sweeps and workers leave it alone: only an operator decides.
    await call_job(settings, ctx, "sweep")
    await run_jobs(settings, ctx)
    assert (await order_row(ctx, order_id)).upstream_state == "review"
    assert (await sandbox_stats(upstream["url"]))["add_calls"] == {"1": 1}
    assert await api(user.key, "balance") == {"balance": "9.10000", "currency": "USD"}


async def test_connection_refused_is_retried(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    from app.embedded import free_port

    down = f"http://127.0.0.1:{free_port()}"
    provider_id = await register_provider(ctx, settings, down, name="Down", key="k")
    sid = await make_service(provider_id=provider_id, provider_service_id="1")
    user = await make_user(balance="10")
    order_id = order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=1000))
    await run_jobs(settings, ctx)
    order = await order_row(ctx, order_id)
    assert (order.status, order.upstream_state, order.attempts) == ("Pending", "queued", 1)
    assert "not sent" in (order.last_error or "")


async def test_redis_flushed_mid_flow_loses_no_order(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    relayed_service: int,
    upstream: dict[str, Any],
) -> None:
    user = await make_user(balance="10")
    for i in range(3):
        await api(user.key, "add", service=relayed_service, link=f"{LINK}/{i}", quantity=100)
    assert ctx.jobs.redis is not None
    await ctx.jobs.redis.flushdb()  # every queued job is gone
    assert await run_jobs(settings, ctx) == 0
    assert (await call_job(settings, ctx, "sweep"))["orders"] == 3
    assert await run_jobs(settings, ctx) == 1  # one relay job claims all three
    async with ctx.db.session() as session:
        states = list(await session.scalars(select(Order.upstream_state).order_by(Order.id)))
    assert states == ["sent", "sent", "sent"]
    assert (await sandbox_stats(upstream["url"]))["add_calls"] == {"1": 3}


async def test_cancel_of_a_sent_order_is_relayed_and_refunded_on_report(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    relayed_service: int,
    upstream: dict[str, Any],
) -> None:
    user = await make_user(balance="10")
    await set_behaviour(upstream["url"], 1, behaviour="complete")
    upstream["app"].state.sandbox.config.seconds_to_start = 60  # stays Pending upstream
    order_id = order_id_of(
        await api(user.key, "add", service=relayed_service, link=LINK, quantity=1000)
    )
    await run_jobs(settings, ctx)
    assert await api(user.key, "cancel", orders=str(order_id)) == [{"order": order_id, "cancel": 1}]
    assert (await order_row(ctx, order_id)).cancel_state == "requested"
    await run_jobs(settings, ctx)  # relay_cancel
    assert (await order_row(ctx, order_id)).cancel_state == "sent"
    await sync_statuses(settings, ctx)
    assert (await api(user.key, "status", order=order_id))["status"] == "Canceled"
    assert await api(user.key, "balance") == {"balance": "10.00000", "currency": "USD"}
    await ledger_ok(ctx)


async def cancel_events(ctx: AppContext, order_id: int) -> list[str]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(UpstreamEvent.outcome)
            .where(UpstreamEvent.order_id == order_id, UpstreamEvent.action == "cancel")
            .order_by(UpstreamEvent.id)
        )
        return list(rows)


async def test_repeated_cancel_is_refused_and_never_sent_upstream_again(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    relayed_service: int,
    upstream: dict[str, Any],
) -> None:
    user = await make_user(balance="10")
    await set_behaviour(upstream["url"], 1, behaviour="complete")
    upstream["app"].state.sandbox.config.seconds_to_start = 60  # stays Pending upstream
    oid = order_id_of(await api(user.key, "add", service=relayed_service, link=LINK, quantity=1000))
    await run_jobs(settings, ctx)
    already = {"order": oid, "cancel": {"error": "Cancel already requested for this order"}}
    assert await api(user.key, "cancel", orders=str(oid)) == [{"order": oid, "cancel": 1}]
    # Asked again before the worker relayed it, then after the provider took it.
    assert await api(user.key, "cancel", order=oid) == [already]
    await run_jobs(settings, ctx)  # relay_cancel
    assert await api(user.key, "cancel", orders=str(oid)) == [already]
    assert await call_job(settings, ctx, "sweep") is not None
    await run_jobs(settings, ctx)
    order = await order_row(ctx, oid)
    assert (order.cancel_state, order.last_error) == ("sent", None)
    assert await cancel_events(ctx, oid) == ["accepted"]
    await sync_statuses(settings, ctx)
    order = await order_row(ctx, oid)
    assert (order.status, order.cancel_state) == ("Canceled", "sent")
    assert await api(user.key, "cancel", order=oid) == [
        {"order": oid, "cancel": {"error": "Order cannot be canceled"}}
    ]
    assert await cancel_events(ctx, oid) == ["accepted"]
    assert await api(user.key, "balance") == {"balance": "10.00000", "currency": "USD"}
    await ledger_ok(ctx)


async def test_repeated_cancel_of_a_drip_feed_order_is_refused(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    drip_service: int,
    upstream: dict[str, Any],
) -> None:
    sid = drip_service
    upstream["app"].state.sandbox.config.seconds_to_start = 60
    user = await make_user(balance="10")
    oid = order_id_of(
        await api(user.key, "add", service=sid, link=LINK, quantity=100, runs=3, interval=30)
    )
    await run_jobs(settings, ctx)  # the first run is sent
    # The runs not sent are refunded now; the one in flight is canceled upstream.
    assert await api(user.key, "cancel", order=oid) == [{"order": oid, "cancel": 1}]
    assert await api(user.key, "balance") == {"balance": "9.90000", "currency": "USD"}
    assert await api(user.key, "cancel", order=oid) == [
        {"order": oid, "cancel": {"error": "Cancel already requested for this order"}}
    ]
    await run_jobs(settings, ctx)
    assert await api(user.key, "cancel", order=oid) == [
        {"order": oid, "cancel": {"error": "Cancel already requested for this order"}}
    ]
    await run_jobs(settings, ctx)
    assert await cancel_events(ctx, (await runs_of(ctx, oid))[0]) == ["accepted"]
    await sync_statuses(settings, ctx)
    assert (await api(user.key, "status", order=oid))["status"] == "Canceled"
    assert await api(user.key, "balance") == {"balance": "10.00000", "currency": "USD"}
    await ledger_ok(ctx)


async def test_refill_relayed_and_followed(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    relayed_service: int,
    upstream: dict[str, Any],
) -> None:
    user = await make_user(balance="10")
    order_id = order_id_of(
        await api(user.key, "add", service=relayed_service, link=LINK, quantity=1000)
    )
    await run_jobs(settings, ctx)
    await sync_statuses(settings, ctx)
    answer = await api(user.key, "refill", order=order_id)
    async with ctx.db.session() as session:
        refill_id = await session.scalar(select(Refill.id).where(Refill.order_id == order_id))
    assert refill_id is not None
    assert answer == {"refill": str(refill_id)}
    await run_jobs(settings, ctx)  # relay_refill
    assert await api(user.key, "refill_status", refill=refill_id) == {"status": "Pending"}
    assert await call_job(settings, ctx, "sync_refills") == 1
    assert await api(user.key, "refill_status", refill=refill_id) == {"status": "Completed"}


async def test_drip_feed_runs_sent_one_by_one_and_cancel_refunds_the_rest(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    drip_service: int,
    upstream: dict[str, Any],
) -> None:
    sid = drip_service
    user = await make_user(balance="10")
    order_id = order_id_of(
        await api(user.key, "add", service=sid, link=LINK, quantity=100, runs=3, interval=30)
    )
    runs = await runs_of(ctx, order_id)
    assert len(runs) == 3
    assert await api(user.key, "balance") == {"balance": "9.70000", "currency": "USD"}
    await run_jobs(settings, ctx)  # only the first run is due
    await sync_statuses(settings, ctx)
    status = await api(user.key, "status", order=order_id)
    assert status == {
        "charge": "0.30000",
        "start_count": "8919",
        "status": "In progress",
        "remains": "200",
        "currency": "USD",
        "runs": "3",
        "runs_done": "1",
    }
    # A new worker (a restart) finds the next run in the database once it is due.
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Order).where(Order.id == runs[1]).values(next_attempt_at=func.now())
        )
    assert (await call_job(settings, ctx, "sweep"))["orders"] == 1
    await run_jobs(settings, ctx)
    await sync_statuses(settings, ctx)
    assert (await api(user.key, "status", order=order_id))["runs_done"] == "2"
    # Cancel mid-way: the third run never leaves and its share comes back.
    assert await api(user.key, "cancel", order=order_id) == [{"order": order_id, "cancel": 1}]
    final = await api(user.key, "status", order=order_id)
    assert (final["status"], final["remains"], final["runs_done"]) == ("Partial", "100", "2")
    assert await api(user.key, "balance") == {"balance": "9.80000", "currency": "USD"}
    assert (await sandbox_stats(upstream["url"]))["add_calls"] == {"1": 2}
    await ledger_ok(ctx)


async def test_upstream_history_is_recorded(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    relayed_service: int,
) -> None:
    user = await make_user(balance="10")
    await api(user.key, "add", service=relayed_service, link=LINK, quantity=1000)
    await run_jobs(settings, ctx)
    async with ctx.db.session() as session:
        events = list(
            await session.execute(
                select(UpstreamEvent.action, UpstreamEvent.outcome).order_by(UpstreamEvent.id)
            )
        )
    assert [tuple(e) for e in events] == [("add", "attempt"), ("add", "sent")]


async def test_subscription_reserved_up_front_and_unused_posts_refunded(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    upstream: dict[str, Any],
) -> None:
    sid = await make_service(
        type="Subscriptions",
        rate=Decimal("1.00"),
        min_quantity=1,
        provider_id=upstream["provider_id"],
        provider_service_id="3",
    )
    user = await make_user(balance="10")
    order = await api(
        user.key,
        "add",
        service=sid,
        username="@star",
        min=10,
        max=100,
        posts=5,
        expiry="01/01/2099",
    )
    order_id = order_id_of(order)
    assert await api(user.key, "balance") == {"balance": "9.50000", "currency": "USD"}
    await run_jobs(settings, ctx)
    await sync_statuses(settings, ctx)
    # The subscription expired with 2 of 5 posts served: 300 of 500 reserved units unused.
    assert await api(user.key, "status", order=order_id) == {
        "charge": "0.50000",
        "start_count": "8919",
        "status": "Partial",
        "remains": "300",
        "currency": "USD",
        "posts": "2",
        "expiry": "01/01/2099",
    }
    assert await api(user.key, "balance") == {"balance": "9.80000", "currency": "USD"}
    await ledger_ok(ctx)


async def test_drip_feed_relayed_as_one_order_when_the_provider_does_it(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    upstream: dict[str, Any],
) -> None:
    sid = await make_service(
        rate=Decimal("1.00"),
        min_quantity=10,
        dripfeed=True,
        provider_id=upstream["provider_id"],
        provider_service_id="2",
        provider_dripfeed=True,
    )
    user = await make_user(balance="10")
    await api(user.key, "add", service=sid, link=LINK, quantity=100, runs=4, interval=10)
    await run_jobs(settings, ctx)
    sandbox_order = upstream["app"].state.sandbox.orders[1]
    assert (sandbox_order.fields["runs"], sandbox_order.fields["interval"]) == ("4", "10")
    assert sandbox_order.quantity == 400
    async with ctx.db.session() as session:
        assert await session.scalar(select(func.count(Order.id))) == 1  # no runs of our own


async def test_a_failed_drip_feed_run_refunds_its_share(
    api: Api,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    drip_service: int,
    upstream: dict[str, Any],
) -> None:
    sid = drip_service
    user = await make_user(balance="10")
    order_id = order_id_of(
        await api(user.key, "add", service=sid, link=LINK, quantity=100, runs=2, interval=5)
    )
    runs = await runs_of(ctx, order_id)
    assert len(runs) == 2
    await run_jobs(settings, ctx)  # run 1 sent
    await sync_statuses(settings, ctx)  # run 1 completed
    await set_behaviour(upstream["url"], 1, behaviour="reject", error="Incorrect link")
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Order).where(Order.id == runs[1]).values(next_attempt_at=func.now())
        )
    await call_job(settings, ctx, "sweep")
    await run_jobs(settings, ctx)  # run 2 refused for good
    status = await api(user.key, "status", order=order_id)
    assert (status["status"], status["remains"], status["runs_done"]) == ("Partial", "100", "1")
    assert await refunds(ctx) == [(runs[1], Decimal("0.1"))]
    assert await api(user.key, "balance") == {"balance": "9.90000", "currency": "USD"}
    await ledger_ok(ctx)
