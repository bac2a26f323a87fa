"""The lean path of every action: the same answers as the full path, cached renderings of
`services` never outliving a change, and multi-id calls split between the single
statement and the full path without losing the order asked or a cent."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import delete, func, select, update

from app.accounts.models import User
from app.api_v2 import lean
from app.catalog.models import Category, Service, UserRate
from app.context import AppContext
from app.ledger.models import LedgerEntry
from app.orders.models import UP_SENT, Order
from app.orders.service import StatusReport, apply_status
from tests.support.api import Api, MakeService, MakeUser
from tests.support.ledger import ledger_ok

LINK = "https://instagram.com/lean"


async def services(client: httpx.AsyncClient, key: str, etag: str | None = None) -> httpx.Response:
    headers = {"if-none-match": etag} if etag else {}
    return await client.post("/api/v2", data={"key": key, "action": "services"}, headers=headers)


def rates(response: httpx.Response) -> dict[int, str]:
    return {row["service"]: row["rate"] for row in response.json()}


async def test_services_rendering_follows_every_change_on_the_next_call(
    client: httpx.AsyncClient, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user, twin = await make_user(), await make_user()
    sid = await make_service(rate=Decimal("1.5"))
    other = await make_service(rate=Decimal("2"), name="Likes", category="Second")
    first = await services(client, user.key)
    assert rates(first) == {sid: "1.50", other: "2.00"}
    # Users priced alike share one rendering.
    assert (await services(client, twin.key)).content == first.content
    assert len(ctx.hot.catalogs) == 1

    async def change(*statements: object) -> None:
        async with ctx.db.transaction() as session:
            for statement in statements:
                await session.execute(statement)  # type: ignore[call-overload]

    await change(update(Service).where(Service.id == sid).values(rate=Decimal("1.25")))
    assert rates(await services(client, user.key)) == {sid: "1.25", other: "2.00"}
    await change(update(User).where(User.id == user.user_id).values(discount_percent=20))
    assert rates(await services(client, user.key)) == {sid: "1.00", other: "1.60"}
    assert rates(await services(client, twin.key)) == {sid: "1.25", other: "2.00"}
    async with ctx.db.transaction() as session:
        session.add(UserRate(user_id=user.user_id, service_id=other, rate=Decimal("0.7")))
    assert rates(await services(client, user.key)) == {sid: "1.00", other: "0.70"}
    await change(delete(UserRate))
    assert rates(await services(client, user.key)) == {sid: "1.00", other: "1.60"}
    await change(update(Category).where(Category.name == "Second").values(enabled=False))
    assert rates(await services(client, user.key)) == {sid: "1.00"}
    await change(update(Service).where(Service.id == sid).values(name="Renamed"))
    assert (await services(client, user.key)).json()[0]["name"] == "Renamed"
    await change(update(Service).values(deleted_at=func.now()))
    assert (await services(client, user.key)).json() == []
    assert (await services(client, "nope")).json() == {"error": "Invalid API key"}


async def test_services_etag_answers_304_until_the_catalog_changes(
    client: httpx.AsyncClient, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user()
    sid = await make_service()
    first = await services(client, user.key)
    etag = first.headers["etag"]
    again = await services(client, user.key, etag)
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    assert (await services(client, user.key, f'"other", W/{etag}')).status_code == 304
    assert (await services(client, user.key, '"stale"')).content == first.content
    async with ctx.db.transaction() as session:
        await session.execute(update(Service).where(Service.id == sid).values(max_quantity=5000))
    changed = await services(client, user.key, etag)
    assert changed.status_code == 200 and changed.json()[0]["max"] == "5000"
    assert changed.headers["etag"] != etag


async def test_balance_and_single_status_follow_every_change(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user("3")
    sid = await make_service(rate=Decimal("1"))
    assert await api(user.key, "balance") == {"balance": "3.00000", "currency": "USD"}
    order = (await api(user.key, "add", service=sid, link=LINK, quantity=100))["order"]
    assert await api(user.key, "balance") == {"balance": "2.90000", "currency": "USD"}
    assert await api(user.key, "status", order=order) == {
        "charge": "0.10000",
        "start_count": "0",
        "status": "Pending",
        "remains": "100",
        "currency": "USD",
    }
    async with ctx.db.transaction() as session:
        await apply_status(session, order, StatusReport("Partial", 17, 40), source="test")
        await session.execute(update(User).where(User.id == user.user_id).values(currency="EUR"))
    assert await api(user.key, "status", order=order) == {
        "charge": "0.10000",
        "start_count": "17",
        "status": "Partial",
        "remains": "40",
        "currency": "EUR",
    }
    assert await api(user.key, "balance") == {"balance": "2.94000", "currency": "EUR"}
    async with ctx.db.transaction() as session:
        await session.execute(update(User).where(User.id == user.user_id).values(status="blocked"))
    for action in ("balance", "status", "services", "refill_status", "cancel", "refill"):
        assert await api(user.key, action, order=order, refill=1) == {"error": "Invalid API key"}


async def test_multi_cancel_settles_unsent_orders_and_leaves_the_rest_to_the_full_path(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user, stranger = await make_user("10"), await make_user("10")
    sid = await make_service(rate=Decimal("1"))
    no_cancel = await make_service(cancel=False)
    ids = [
        (await api(user.key, "add", service=sid, link=f"{LINK}/{i}", quantity=100 * (i + 1)))[
            "order"
        ]
        for i in range(4)
    ]
    locked = (await api(user.key, "add", service=no_cancel, link=LINK, quantity=100))["order"]
    foreign = (await api(stranger.key, "add", service=sid, link=LINK, quantity=100))["order"]
    async with ctx.db.transaction() as session:  # one order already sent upstream
        await session.execute(
            update(Order).where(Order.id == ids[3]).values(upstream_state=UP_SENT)
        )
    asked = f"{ids[2]},x,{ids[0]},{locked},{foreign},{ids[3]},{ids[1]}"
    assert await api(user.key, "cancel", orders=asked) == [
        {"order": ids[2], "cancel": 1},
        {"order": "x", "cancel": {"error": "Incorrect order ID"}},
        {"order": ids[0], "cancel": 1},
        {"order": locked, "cancel": {"error": "Cancel is disabled for this service"}},
        {"order": foreign, "cancel": {"error": "Incorrect order ID"}},
        {"order": ids[3], "cancel": 1},  # sent: its cancel goes upstream
        {"order": ids[1], "cancel": 1},
    ]
    # 0.1 + 0.2 + 0.3 refunded; the sent order's charge (0.4) waits for the provider.
    spent = Decimal("0.4") + Decimal("0.09")
    assert await api(user.key, "balance") == {
        "balance": f"{Decimal(10) - spent:.5f}",
        "currency": "USD",
    }
    async with ctx.db.session() as session:
        reasons = list(
            await session.scalars(
                select(LedgerEntry.reason)
                .where(LedgerEntry.kind == "refund")
                .order_by(LedgerEntry.id)
            )
        )
        sent = await session.get(Order, ids[3])
    assert reasons == [f"Order {i}: Canceled before sending" for i in (ids[2], ids[0], ids[1])]
    assert sent is not None and sent.cancel_state == "requested"
    # A repeat is the full path's to refuse.
    assert await api(user.key, "cancel", orders=f"{ids[0]},{ids[0]}") == [
        {"order": ids[0], "cancel": {"error": "Order cannot be canceled"}},
        {"order": ids[0], "cancel": {"error": "Order cannot be canceled"}},
    ]
    assert await api(user.key, "cancel", order=f" {ids[1]}") == [
        {"order": f" {ids[1]}", "cancel": {"error": "Incorrect order ID"}}
    ]
    await ledger_ok(ctx)


async def test_multi_refill_and_refill_status_keep_the_order_asked(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user("10")
    sid = await make_service()
    no_refill = await make_service(refill=False)
    ids = [
        (await api(user.key, "add", service=sid, link=f"{LINK}/{i}", quantity=100))["order"]
        for i in range(3)
    ]
    plain = (await api(user.key, "add", service=no_refill, link=LINK, quantity=100))["order"]
    async with ctx.db.transaction() as session:
        for order_id in [*ids[:2], plain]:
            await apply_status(session, order_id, StatusReport("Completed", 1, 0), source="test")
    answer = await api(user.key, "refill", orders=f"{ids[1]},{plain},{ids[2]},{ids[0]},0")
    made = {row["order"]: row["refill"] for row in answer}
    assert [row["order"] for row in answer] == [ids[1], plain, ids[2], ids[0], "0"]
    assert made[plain] == {"error": "Refill is disabled for this service"}
    assert made[ids[2]] == {"error": "Refill is not available for this order"}
    assert made["0"] == {"error": "Incorrect order ID"}
    assert isinstance(made[ids[0]], int) and isinstance(made[ids[1]], int)
    assert await api(user.key, "refill", order=ids[0]) == {
        "error": "Refill is already in progress for this order"
    }
    first, second = made[ids[1]], made[ids[0]]
    assert await api(user.key, "refill_status", refills=f"{second},nope,{first},999") == [
        {"refill": second, "status": "Pending"},
        {"refill": "nope", "status": {"error": "Refill not found"}},
        {"refill": first, "status": "Pending"},
        {"refill": 999, "status": {"error": "Refill not found"}},
    ]
    assert await api(user.key, "refill_status", refill=second) == {"status": "Pending"}
    assert await api(user.key, "refill_status", refill="x") == {"error": "Refill not found"}
    async with ctx.db.session() as session:
        count = await session.scalar(select(func.count()).select_from(Order))
    assert count == 4


async def test_calls_that_miss_together_share_one_rendering(
    client: httpx.AsyncClient,
    ctx: AppContext,
    make_user: MakeUser,
    make_service: MakeService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    users = [await make_user() for _ in range(5)]
    await make_service()
    renderings = 0
    render = lean._render_catalog

    async def counted(context: AppContext, user_id: int) -> Any:
        nonlocal renderings
        renderings += 1
        return await render(context, user_id)

    monkeypatch.setattr(lean, "_render_catalog", counted)
    answers = await asyncio.gather(*(services(client, u.key) for u in users * 4))
    assert renderings == 1
    assert len({a.content for a in answers}) == 1 and answers[0].json()[0]["rate"] == "0.90"
