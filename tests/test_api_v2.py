"""The public API v2 at the wire level: exact shapes, types and error strings."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import func, select, update

from app.context import AppContext
from app.db import utcnow
from app.ledger.models import LedgerEntry
from app.orders.models import Order
from app.orders.service import StatusReport, apply_status
from app.refills.models import Refill
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.ledger import ledger_ok

LINK = "https://instagram.com/someone"
# Stands for the id of a service that does not exist (the one after the test's own service).
NO_SUCH_SERVICE = "no such service"


async def finish(ctx: AppContext, order_id: int, status: str, remains: int = 0) -> None:
    async with ctx.db.transaction() as session:
        await apply_status(session, order_id, StatusReport(status, 100, remains), source="test")


async def balance_of(ctx: AppContext, user_id: int) -> Decimal:
    async with ctx.db.session() as session:
        rows = await session.scalar(
            select(func.sum(LedgerEntry.amount)).where(LedgerEntry.user_id == user_id)
        )
    return rows or Decimal(0)


# --- services / balance -----------------------------------------------------------------


async def test_services_lists_exact_shape(
    api: Api, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user()
    sid = await make_service()
    await make_service(name="Hidden", enabled=False)
    assert await api(user.key, "services") == [
        {
            "service": sid,
            "name": "Followers",
            "type": "Default",
            "category": "First Category",
            "rate": "0.90",
            "min": "50",
            "max": "10000",
            "refill": True,
            "cancel": True,
            "dripfeed": False,
        }
    ]


async def test_balance_shape(api: Api, make_user: MakeUser) -> None:
    user = await make_user(balance="100.84292")
    assert await api(user.key, "balance") == {"balance": "100.84292", "currency": "USD"}


@pytest.mark.parametrize("key", ["", "nope", "x" * 500])
async def test_wrong_or_missing_key(api: Api, client: httpx.AsyncClient, key: str) -> None:
    assert await api(key, "balance") == {"error": "Invalid API key"}
    response = await client.post("/api/v2", data={"action": "balance"})
    assert response.json() == {"error": "Invalid API key"}


@pytest.mark.parametrize("action", ["", "withdraw", "BALANCEX"])
async def test_unknown_or_missing_action(api: Api, make_user: MakeUser, action: str) -> None:
    user = await make_user()
    assert await api(user.key, action) == {"error": "Incorrect request"}


# --- encodings ----------------------------------------------------------------------------


async def test_form_json_get_and_multipart_encodings(
    client: httpx.AsyncClient, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    expected = {"balance": "10.00000", "currency": "USD"}
    form = await client.post("/api/v2", data={"key": user.key, "action": "balance"})
    as_json = await client.post("/api/v2", json={"key": user.key, "action": "balance"})
    query = await client.get("/api/v2", params={"key": user.key, "action": "balance"})
    multipart = await client.post(
        "/api/v2",
        files={"key": (None, user.key), "action": (None, "balance")},
    )
    for response in (form, as_json, query, multipart):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.json() == expected
    # JSON numbers are accepted where the protocol sends strings.
    added = await client.post(
        "/api/v2",
        json={"key": user.key, "action": "add", "service": sid, "link": LINK, "quantity": 100},
    )
    order_id = order_id_of(added.json())
    # Unknown parameters are ignored.
    status = await client.get(
        "/api/v2",
        params={"key": user.key, "action": "status", "order": str(order_id), "foo": "bar"},
    )
    assert status.json()["status"] == "Pending"


async def test_bad_bodies_answer_in_protocol_shape(
    client: httpx.AsyncClient, make_user: MakeUser
) -> None:
    user = await make_user()
    broken = await client.post(
        "/api/v2", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert broken.status_code == 200 and broken.json() == {"error": "Incorrect request"}
    array = await client.post("/api/v2", json=[1, 2])
    assert array.json() == {"error": "Incorrect request"}
    huge = await client.post(
        "/api/v2", data={"key": user.key, "action": "balance", "pad": "x" * 300_000}
    )
    assert huge.status_code == 413 and huge.json() == {"error": "Request too large"}
    admin = await client.post("/admin/v1/categories", content=b"{" + b" " * 300_000 + b"}")
    assert admin.status_code == 413


# --- add ----------------------------------------------------------------------------------


async def test_add_charges_exactly_and_status_reports(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    order_id = order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=309))
    assert await api(user.key, "status", order=order_id) == {
        "charge": "0.27810",
        "start_count": "0",
        "status": "Pending",
        "remains": "309",
        "currency": "USD",
    }
    assert await api(user.key, "balance") == {"balance": "9.72190", "currency": "USD"}
    async with ctx.db.session() as session:
        entries = (await session.scalars(select(LedgerEntry).order_by(LedgerEntry.id))).all()
    assert [(e.kind, e.amount, e.order_id) for e in entries] == [
        ("deposit", Decimal("10"), None),
        ("charge", Decimal("-0.2781"), order_id),
    ]
    await ledger_ok(ctx)


async def test_charge_rounds_up_at_rate_precision(
    api: Api, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="1")
    cheap = await make_service(rate=Decimal("0.0123"), min_quantity=1)
    order_id = order_id_of(await api(user.key, "add", service=cheap, link=LINK, quantity=1))
    # 0.0123 / 1000 = 0.0000123 needs 7 digits: charged exactly, shown with them.
    status = await api(user.key, "status", order=order_id)
    assert status["charge"] == "0.0000123"
    plain = await make_service(rate=Decimal("0.333"), min_quantity=1)
    second = (await api(user.key, "add", service=plain, link=LINK + "2", quantity=7))["order"]
    # 0.333 × 7 / 1000 = 0.002331 → 6 digits needed by the rate per unit
    assert (await api(user.key, "status", order=second))["charge"] == "0.002331"


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"service": NO_SUCH_SERVICE}, "Incorrect service ID"),
        ({"service": "abc"}, "Incorrect service ID"),
        ({"service": ""}, "Incorrect service ID"),
        ({"link": ""}, "Incorrect link"),
        ({"link": "ftp://instagram.com/x"}, "Incorrect link"),
        ({"link": "instagram.com/x"}, "Incorrect link"),
        ({"link": "https://insta gram.com/x"}, "Incorrect link"),
        ({"link": "javascript:alert(1)"}, "Incorrect link"),
        ({"link": "https://example.com/'; DROP TABLE orders;--"}, "Incorrect link"),
        ({"quantity": "49"}, "Quantity less than minimal 50"),
        ({"quantity": "-5"}, "Quantity less than minimal 50"),
        ({"quantity": "10001"}, "Quantity more than maximal 10000"),
        ({"quantity": "99999999999999999"}, "Quantity more than maximal 10000"),
        ({"quantity": "1e3"}, "Incorrect quantity"),
        ({"quantity": "12.5"}, "Incorrect quantity"),
        ({"quantity": "abc"}, "Incorrect quantity"),
        ({"quantity": ""}, "Incorrect quantity"),
        ({"quantity": "١٠٠"}, "Incorrect quantity"),
        ({"quantity": "999999999999999999999999"}, "Incorrect quantity"),
        ({"runs": "3", "interval": "10"}, "Drip-feed is disabled for this service"),
        ({"link": "https://instagram.com/\x00x"}, "Incorrect request"),
        ({"link": "https://instagram.com/ünïcödé/😀"}, None),
    ],
)
async def test_add_validation_errors(
    api: Api,
    ctx: AppContext,
    make_user: MakeUser,
    make_service: MakeService,
    fields: dict[str, str],
    error: str | None,
) -> None:
    user = await make_user(balance="100")
    sid = await make_service(link_pattern=r"^https?://(www\.)?[a-z.]+/")
    request = {"service": str(sid), "link": LINK, "quantity": "100", **fields}
    if request["service"] == NO_SUCH_SERVICE:
        request["service"] = str(sid + 1)
    if error is None:  # accepted: unicode is fine in a path
        assert "order" in await api(user.key, "add", **request)
        return
    assert await api(user.key, "add", **request) == {"error": error}
    assert await api(user.key, "balance") == {"balance": "100.00000", "currency": "USD"}
    async with ctx.db.session() as session:
        assert await session.scalar(select(func.count(Order.id))) == 0


async def test_add_respects_link_pattern_and_step(
    api: Api, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="100")
    sid = await make_service(link_pattern=r"^https://(www\.)?instagram\.com/", step=10)
    assert await api(user.key, "add", service=sid, link="https://tiktok.com/x", quantity=100) == {
        "error": "Incorrect link"
    }
    assert await api(user.key, "add", service=sid, link=LINK, quantity=105) == {
        "error": "Quantity must be a multiple of 10"
    }
    order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=110))


async def test_add_refuses_disabled_and_deleted_services(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="100")
    disabled = await make_service(enabled=False)
    deleted = await make_service(deleted_at=utcnow())
    for sid in (disabled, deleted):
        assert await api(user.key, "add", service=sid, link=LINK, quantity=100) == {
            "error": "Incorrect service ID"
        }


async def test_not_enough_funds(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="0.08999")
    sid = await make_service()
    assert await api(user.key, "add", service=sid, link=LINK, quantity=100) == {
        "error": "Not enough funds on balance"
    }
    assert await api(user.key, "balance") == {"balance": "0.08999", "currency": "USD"}
    async with ctx.db.session() as session:
        assert await session.scalar(select(func.count(Order.id))) == 0


async def test_duplicate_active_link_refused_until_order_finishes(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="100")
    sid = await make_service()
    first = order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=100))
    duplicate = {
        "error": "You have active order with this link. Please wait until order being completed."
    }
    # The same link written differently is the same link.
    for variant in (LINK, "http://www.Instagram.com/someone/", LINK + "#top"):
        assert await api(user.key, "add", service=sid, link=variant, quantity=100) == duplicate
    # Another user or another service is not a duplicate.
    other = await make_user(balance="100")
    assert "order" in await api(other.key, "add", service=sid, link=LINK, quantity=100)
    second = await make_service(name="Likes")
    assert "order" in await api(user.key, "add", service=second, link=LINK, quantity=100)
    await finish(ctx, first, "Completed")
    result = await api(user.key, "add", service=sid, link=LINK, quantity=100)
    assert "order" in result
    await ledger_ok(ctx)


async def test_package_charges_the_rate(
    api: Api, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    sid = await make_service(type="Package", rate=Decimal("4.99"), min_quantity=1, max_quantity=1)
    order_id = order_id_of(await api(user.key, "add", service=sid, link=LINK))
    assert (await api(user.key, "status", order=order_id))["charge"] == "4.99000"
    assert await api(user.key, "balance") == {"balance": "5.01000", "currency": "USD"}


# --- status -------------------------------------------------------------------------------


async def test_status_of_foreign_or_missing_order(
    api: Api, make_user: MakeUser, make_service: MakeService
) -> None:
    owner, stranger = await make_user(balance="10"), await make_user(balance="10")
    sid = await make_service()
    owned = (await api(owner.key, "add", service=sid, link=LINK, quantity=100))["order"]
    for order in (str(owned), str(owned + 1), "abc", "", "-1", "0"):
        assert await api(stranger.key, "status", order=order) == {"error": "Incorrect order ID"}


async def test_multi_status_with_100_mixed_ids(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    owner, stranger = await make_user(balance="1000"), await make_user(balance="1000")
    sid = await make_service()
    own: list[int] = []
    foreign: list[int] = []
    for i in range(40):
        own.append(
            (await api(owner.key, "add", service=sid, link=f"{LINK}/{i}", quantity=100))["order"]
        )
        foreign.append(
            (await api(stranger.key, "add", service=sid, link=f"{LINK}/{i}", quantity=100))["order"]
        )
    await finish(ctx, own[0], "Partial", remains=40)
    top = max(own + foreign)
    missing = list(range(top + 10_000, top + 10_019))
    ids = [str(i) for i in own + foreign + missing] + ["abc"]
    assert len(ids) == 100
    result = await api(owner.key, "status", orders=",".join(ids))
    assert list(result) == ids
    assert result[str(own[0])] == {
        "charge": "0.09000",
        "start_count": "100",
        "status": "Partial",
        "remains": "40",
        "currency": "USD",
    }
    assert all(result[str(i)]["status"] == "Pending" for i in own[1:])
    for other in [*foreign, *missing, "abc"]:
        assert result[str(other)] == {"error": "Incorrect order ID"}
    too_many = ",".join(str(i) for i in range(1, 102))
    assert await api(owner.key, "status", orders=too_many) == {
        "error": "Too many IDs: at most 100 per request"
    }


# --- refill -------------------------------------------------------------------------------


async def test_refill_rules_and_shapes(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user, stranger = await make_user(balance="100"), await make_user()
    sid = await make_service(refill=True, refill_days=30)
    no_refill = await make_service(refill=False)
    first = order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=100))
    second = order_id_of(await api(user.key, "add", service=no_refill, link=LINK, quantity=100))
    old = order_id_of(await api(user.key, "add", service=sid, link=LINK + "/old", quantity=100))
    assert await api(user.key, "refill", order=first) == {
        "error": "Refill is not available for this order"
    }
    await finish(ctx, first, "Completed")
    await finish(ctx, second, "Completed")
    await finish(ctx, old, "Completed")
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Order).where(Order.id == old).values(finished_at=utcnow() - timedelta(days=31))
        )
    assert await api(user.key, "refill", order=second) == {
        "error": "Refill is disabled for this service"
    }
    assert await api(user.key, "refill", order=old) == {"error": "Refill period has expired"}
    assert await api(stranger.key, "refill", order=first) == {"error": "Incorrect order ID"}
    answer = await api(user.key, "refill", order=first)
    async with ctx.db.session() as session:
        refill_id = await session.scalar(select(Refill.id).where(Refill.order_id == first))
    assert refill_id is not None
    assert answer == {"refill": str(refill_id)}
    assert await api(user.key, "refill", order=first) == {
        "error": "Refill is already in progress for this order"
    }
    no_order = old + 1000
    assert await api(user.key, "refill", orders=f"{first},{second},{no_order},x") == [
        {"order": first, "refill": {"error": "Refill is already in progress for this order"}},
        {"order": second, "refill": {"error": "Refill is disabled for this service"}},
        {"order": no_order, "refill": {"error": "Incorrect order ID"}},
        {"order": "x", "refill": {"error": "Incorrect order ID"}},
    ]
    no_refill_id = refill_id + 1000
    assert await api(user.key, "refill_status", refill=refill_id) == {"status": "Pending"}
    assert await api(stranger.key, "refill_status", refill=refill_id) == {
        "error": "Refill not found"
    }
    assert await api(user.key, "refill_status", refill=no_refill_id) == {
        "error": "Refill not found"
    }
    assert await api(user.key, "refill_status", refills=f"{refill_id},{no_refill_id}") == [
        {"refill": refill_id, "status": "Pending"},
        {"refill": no_refill_id, "status": {"error": "Refill not found"}},
    ]


async def test_multi_refill_success_shape(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="100")
    sid = await make_service()
    orders: list[int] = []
    for i in range(3):
        orders.append(
            order_id_of(await api(user.key, "add", service=sid, link=f"{LINK}/{i}", quantity=100))
        )
        await finish(ctx, orders[-1], "Completed")
    first, _, third = orders
    answer = await api(user.key, "refill", orders=f"{first},{third}")
    async with ctx.db.session() as session:
        rows = (await session.execute(select(Refill.order_id, Refill.id))).all()
    made = {order_id: refill_id for order_id, refill_id in rows}
    assert set(made) == {first, third}
    assert answer == [
        {"order": first, "refill": made[first]},
        {"order": third, "refill": made[third]},
    ]
    assert all(type(item["refill"]) is int for item in answer)


# --- cancel -------------------------------------------------------------------------------


async def test_cancel_pending_refunds_in_full_once(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user, stranger = await make_user(balance="10"), await make_user()
    sid = await make_service()
    no_cancel = await make_service(cancel=False)
    first = order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=1000))
    second = order_id_of(await api(user.key, "add", service=no_cancel, link=LINK, quantity=100))
    assert await api(user.key, "balance") == {"balance": "9.01000", "currency": "USD"}
    no_order = second + 1000
    assert await api(user.key, "cancel", orders=f"{no_order},{first},{second}") == [
        {"order": no_order, "cancel": {"error": "Incorrect order ID"}},
        {"order": first, "cancel": 1},
        {"order": second, "cancel": {"error": "Cancel is disabled for this service"}},
    ]
    assert await api(user.key, "balance") == {"balance": "9.91000", "currency": "USD"}
    assert (await api(user.key, "status", order=first))["status"] == "Canceled"
    assert await api(user.key, "cancel", order=first) == [
        {"order": first, "cancel": {"error": "Order cannot be canceled"}}
    ]
    assert await api(stranger.key, "cancel", order=second) == [
        {"order": second, "cancel": {"error": "Incorrect order ID"}}
    ]
    assert await api(user.key, "balance") == {"balance": "9.91000", "currency": "USD"}
    await ledger_ok(ctx)


async def test_concurrent_cancels_refund_exactly_once(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    order_id = order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=1000))
    results = await asyncio.gather(*(api(user.key, "cancel", order=order_id) for _ in range(10)))
    successes = [r for r in results if r == [{"order": order_id, "cancel": 1}]]
    assert len(successes) == 1
    assert await api(user.key, "balance") == {"balance": "10.00000", "currency": "USD"}
    async with ctx.db.session() as session:
        refunds = await session.scalar(
            select(func.count(LedgerEntry.id)).where(LedgerEntry.kind == "refund")
        )
    assert refunds == 1
    await ledger_ok(ctx)


# --- money under concurrency and status reports -------------------------------------------


async def test_200_concurrent_adds_spend_exactly_the_balance(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="100")
    sid = await make_service(rate=Decimal("1.00"), min_quantity=1000, max_quantity=1000)
    results = await asyncio.gather(
        *(api(user.key, "add", service=sid, link=f"{LINK}/{i}", quantity=1000) for i in range(200))
    )
    placed = [r for r in results if "order" in r]
    refused = [r for r in results if r == {"error": "Not enough funds on balance"}]
    assert len(placed) == 100 and len(refused) == 100
    assert await api(user.key, "balance") == {"balance": "0.00000", "currency": "USD"}
    async with ctx.db.session() as session:
        assert await session.scalar(select(func.count(Order.id))) == 100
    await ledger_ok(ctx)


async def test_two_concurrent_identical_adds_one_wins(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="100")
    sid = await make_service()
    for attempt in range(5):
        link = f"{LINK}/race{attempt}"
        results = await asyncio.gather(
            api(user.key, "add", service=sid, link=link, quantity=100),
            api(user.key, "add", service=sid, link=link, quantity=100),
        )
        assert sorted("order" in r for r in results) == [False, True]
        assert {
            "error": "You have active order with this link. Please wait until order being completed."
        } in results
    await ledger_ok(ctx)


async def test_partial_refunds_remains_once_and_final_orders_never_move(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    sid = await make_service(rate=Decimal("0.90"))
    # charge 0.27810
    order_id = order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=309))
    await finish(ctx, order_id, "Partial", remains=157)
    await finish(ctx, order_id, "Partial", remains=157)
    await finish(ctx, order_id, "Completed")
    await finish(ctx, order_id, "Canceled")
    # 157 × 0.2781 / 309 = 0.1413 exactly; rounded down at 5 digits
    assert await api(user.key, "status", order=order_id) == {
        "charge": "0.27810",
        "start_count": "100",
        "status": "Partial",
        "remains": "157",
        "currency": "USD",
    }
    assert await api(user.key, "balance") == {"balance": "9.86320", "currency": "USD"}
    await ledger_ok(ctx)


async def test_over_delivery_is_never_charged(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    order_id = order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=100))
    await finish(ctx, order_id, "Partial", remains=-20)
    assert (await api(user.key, "status", order=order_id))["remains"] == "0"
    assert await api(user.key, "balance") == {"balance": "9.91000", "currency": "USD"}


async def test_responses_are_json_bytes_with_string_numbers(
    client: httpx.AsyncClient, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="1")
    sid = await make_service()
    added = await client.post(
        "/api/v2",
        data={
            "key": user.key,
            "action": "add",
            "service": str(sid),
            "link": LINK,
            "quantity": "100",
        },
    )
    order_id = order_id_of(added.json())
    response = await client.post(
        "/api/v2", data={"key": user.key, "action": "status", "order": str(order_id)}
    )
    assert json.loads(response.content) == {
        "charge": "0.09000",
        "start_count": "0",
        "status": "Pending",
        "remains": "100",
        "currency": "USD",
    }
