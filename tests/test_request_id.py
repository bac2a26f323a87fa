"""The optional `request_id` of `add` (SPEC §4): one order and one charge per request id,
whichever path places it, however many times and however concurrently it is sent;
`status` by request id; `capabilities`. Without a request id nothing changes."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select, update

from app.catalog.models import Service
from app.context import AppContext
from app.ledger.models import LedgerEntry
from app.orders import service as orders
from app.orders.models import Order
from app.orders.service import StatusReport, apply_status
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.client import MakeCustomer
from tests.support.ledger import ledger_ok

LINK = "https://instagram.com/someone"
REUSED = {"error": "Request ID already used with other parameters"}


async def charges_of(ctx: AppContext, user_id: int) -> list[Decimal]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(LedgerEntry.amount)
            .where(LedgerEntry.user_id == user_id, LedgerEntry.kind == "charge")
            .order_by(LedgerEntry.id)
        )
        return list(rows)


async def orders_of(ctx: AppContext, user_id: int) -> int:
    async with ctx.db.session() as session:
        count = await session.scalar(select(func.count(Order.id)).where(Order.user_id == user_id))
    return int(count or 0)


async def test_same_request_id_answers_the_same_order_and_charges_once(
    ctx: AppContext, api: Api, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    first = order_id_of(
        await api(user.key, "add", service=sid, link=LINK, quantity=100, request_id="r-1.a:B_")
    )
    again = await api(user.key, "add", service=sid, link=LINK, quantity=100, request_id="r-1.a:B_")
    assert again == {"order": first}
    # Still the same once the order is finished and the link is free again.
    async with ctx.db.transaction() as session:
        await apply_status(session, first, StatusReport("Completed", 0, 0), source="test")
    again = await api(user.key, "add", service=sid, link=LINK, quantity=100, request_id="r-1.a:B_")
    assert again == {"order": first}
    assert await charges_of(ctx, user.user_id) == [Decimal("-0.09")]
    assert await orders_of(ctx, user.user_id) == 1
    await ledger_ok(ctx)


async def test_other_parameters_with_a_used_request_id_are_refused(
    ctx: AppContext, api: Api, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=100, request_id="x"))
    assert (
        await api(user.key, "add", service=sid, link=LINK, quantity=200, request_id="x") == REUSED
    )
    assert (
        await api(user.key, "add", service=sid, link=LINK + "2", quantity=100, request_id="x")
        == REUSED
    )
    # Another user's request ids are their own.
    other = await make_user(balance="10")
    order_id_of(await api(other.key, "add", service=sid, link=LINK, quantity=200, request_id="x"))
    assert await charges_of(ctx, user.user_id) == [Decimal("-0.09")]
    await ledger_ok(ctx)


@pytest.mark.parametrize("given", ["", "a" * 65, "has space", "é", "a/b", "a,b"])
async def test_malformed_request_ids_are_refused(
    ctx: AppContext, api: Api, make_user: MakeUser, make_service: MakeService, given: str
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    answer = await api(user.key, "add", service=sid, link=LINK, quantity=100, request_id=given)
    assert answer == {"error": "Incorrect request ID"}
    assert await orders_of(ctx, user.user_id) == 0


async def test_the_longest_request_id_is_accepted(
    api: Api, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    rid = "Az09._:-" * 8
    first = order_id_of(
        await api(user.key, "add", service=sid, link=LINK, quantity=100, request_id=rid)
    )
    assert await api(user.key, "status", request_id=rid) == {
        "charge": "0.09000",
        "start_count": "0",
        "status": "Pending",
        "remains": "100",
        "currency": "USD",
        "order": first,
    }


async def test_full_path_replays_without_charging_even_when_funds_are_gone(
    ctx: AppContext, api: Api, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="0.09")
    sid = await make_service()
    fields = {"service": str(sid), "link": LINK, "quantity": "100", "request_id": "once"}
    async with ctx.db.transaction() as session:
        placed = await orders.place_order(session, user.user_id, fields)
    # The balance is spent: a new order would be refused, the retry is not.
    assert await api(user.key, "add", **fields) == {"order": placed.order_id}
    # A changed service (cache stale, then disabled) does not keep the retry from its order.
    async with ctx.db.transaction() as session:
        await session.execute(update(Service).where(Service.id == sid).values(enabled=False))
    assert await api(user.key, "add", **fields) == {"order": placed.order_id}
    async with ctx.db.transaction() as session:
        replay = await orders.place_order(session, user.user_id, fields)
    assert replay.order_id == placed.order_id and replay.relays == []
    assert await charges_of(ctx, user.user_id) == [Decimal("-0.09")]
    await ledger_ok(ctx)


async def test_without_request_id_nothing_changes(
    api: Api, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=100))
    assert await api(user.key, "add", service=sid, link=LINK, quantity=100) == {
        "error": "You have active order with this link. Please wait until order being completed."
    }
    # A request id does not bypass the duplicate rule for a new request.
    assert await api(user.key, "add", service=sid, link=LINK, quantity=100, request_id="n") == {
        "error": "You have active order with this link. Please wait until order being completed."
    }


async def test_fifty_concurrent_identical_adds_make_one_order(
    ctx: AppContext, client: httpx.AsyncClient, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    data = {
        "key": user.key,
        "action": "add",
        "service": str(sid),
        "link": LINK,
        "quantity": "100",
        "request_id": "burst-1",
    }
    answers = await asyncio.gather(*(client.post("/api/v2", data=data) for _ in range(50)))
    ids = {order_id_of(a.json()) for a in answers}
    assert len(ids) == 1
    assert await orders_of(ctx, user.user_id) == 1
    assert await charges_of(ctx, user.user_id) == [Decimal("-0.09")]
    await ledger_ok(ctx)


async def test_concurrent_full_path_adds_wait_for_the_first(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    fields = {"service": str(sid), "link": LINK, "quantity": "100", "request_id": "full"}

    async def place() -> int:
        async with ctx.db.transaction() as session:
            return (await orders.place_order(session, user.user_id, fields)).order_id

    ids = await asyncio.gather(*(place() for _ in range(10)))
    assert len(set(ids)) == 1
    assert await charges_of(ctx, user.user_id) == [Decimal("-0.09")]


async def test_status_by_request_ids_is_keyed_as_given(
    api: Api, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    other = await make_user(balance="10")
    sid = await make_service()
    a = order_id_of(
        await api(user.key, "add", service=sid, link=LINK, quantity=100, request_id="a")
    )
    order_id_of(await api(other.key, "add", service=sid, link=LINK, quantity=100, request_id="b"))
    answer = await api(user.key, "status", request_ids="a,b, nope")
    pending = {
        "charge": "0.09000",
        "start_count": "0",
        "status": "Pending",
        "remains": "100",
        "currency": "USD",
    }
    assert answer == {
        "a": {**pending, "order": a},
        "b": {"error": "Incorrect order ID"},
        "nope": {"error": "Incorrect order ID"},
    }
    assert await api(user.key, "status", request_id="b") == {"error": "Incorrect order ID"}
    assert await api(user.key, "status", request_id="a") == {**pending, "order": a}
    # `order` wins over `request_id` (a standard request stays standard).
    assert await api(user.key, "status", order=a, request_id="zzz") == pending


async def test_capabilities(api: Api, make_user: MakeUser) -> None:
    user = await make_user()
    expected = {
        "request_id": True,
        "webhooks": True,
        "status_by_request_id": True,
        "version": "1.0.0",
    }
    assert await api(user.key, "capabilities") == expected
    assert await api("", "capabilities") == expected


async def test_client_orders_take_a_request_id(
    ctx: AppContext,
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
    api: Api,
) -> None:
    who = await make_customer(balance="10")
    sid = await make_service()
    body = {"service": str(sid), "link": LINK, "quantity": "100", "request_id": "web-1"}
    first = await client.post("/client/v1/orders", headers=who.auth, json=body)
    again = await client.post("/client/v1/orders", headers=who.auth, json=body)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    other = await client.post(
        "/client/v1/orders", headers=who.auth, json={**body, "quantity": "200"}
    )
    assert other.status_code == 422
    assert other.json()["detail"] == REUSED["error"]
    # The same request through API v2 is the same order.
    assert (
        await api(who.key, "add", service=sid, link=LINK, quantity=100, request_id="web-1")
        == first.json()
    )
    assert await charges_of(ctx, who.user_id) == [Decimal("-0.09")]
