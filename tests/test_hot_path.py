"""The single-statement `add` and `status`: every cached fact is re-checked by the
database, so a change made after the cache was filled is honoured on the very next call,
and the PostgreSQL-rendered multi-status is byte-for-byte what the Python renderer says."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, select, update

from app.accounts import service as accounts
from app.accounts.models import User
from app.api_v2.render import order_status
from app.catalog.models import Category, Service, UserRate
from app.context import AppContext
from app.errors import IncorrectOrderId
from app.orders.models import Order
from tests.support.api import Api, MakeService, MakeUser
from tests.support.ledger import ledger_ok

DUPLICATE = "You have active order with this link. Please wait until order being completed."


async def balance(ctx: AppContext, user_id: int) -> Decimal:
    async with ctx.db.session() as session:
        value = await session.scalar(select(User.balance).where(User.id == user_id))
    assert value is not None
    return value


async def orders_of(ctx: AppContext, user_id: int) -> list[Order]:
    async with ctx.db.session() as session:
        return list(await session.scalars(select(Order).where(Order.user_id == user_id)))


async def warm(api: Api, ctx: AppContext, key: str, sid: int, link: str) -> int:
    """An add that leaves the caches filled: later adds take the single statement."""
    placed = await api(key, "add", service=sid, quantity=100, link=link)
    assert "order" in placed, placed
    if accounts.hash_key(key) not in ctx.hot.keys:  # an earlier test's cache was stale
        await api(key, "status", order=placed["order"])
        assert "order" in await api(key, "add", service=sid, quantity=100, link=link + "/w")
    assert accounts.hash_key(key) in ctx.hot.keys and sid in ctx.hot.services
    return int(placed["order"])


async def test_fast_add_charges_and_records_like_the_full_path(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user("10")
    sid = await make_service(rate=Decimal("0.9"))
    first = await warm(api, ctx, user.key, sid, "https://instagram.com/a")
    second = (await api(user.key, "add", service=sid, quantity=100, link="https://x.com/b"))[
        "order"
    ]
    assert second > first
    rows = {o.id: o for o in await orders_of(ctx, user.user_id)}
    a, b = rows[first], rows[second]
    same = ("type", "quantity", "rate", "charge", "refunded", "status", "upstream_state")
    assert all(getattr(a, f) == getattr(b, f) for f in same)
    assert b.charge == Decimal("0.09") and b.link_normalized == "x.com/b"
    spent = sum(o.charge for o in rows.values())
    assert await balance(ctx, user.user_id) == Decimal(10) - spent
    await ledger_ok(ctx)


async def test_changes_after_caching_are_honoured_at_once(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user("100")
    sid = await make_service(rate=Decimal("1.0"), min_quantity=50)
    await warm(api, ctx, user.key, sid, "https://x.com/0")
    link = iter(f"https://x.com/{i}" for i in range(1, 100))

    async def add(quantity: int = 100) -> Any:
        return await api(user.key, "add", service=sid, quantity=quantity, link=next(link))

    # The operator raises the minimum: the cached copy of the service is stale.
    async with ctx.db.transaction() as session:
        await session.execute(update(Service).where(Service.id == sid).values(min_quantity=200))
    assert await add() == {"error": "Quantity less than minimal 200"}
    assert "order" in await add(200)
    # A custom rate, then a discount (after the custom rate is gone).
    async with ctx.db.transaction() as session:
        session.add(UserRate(user_id=user.user_id, service_id=sid, rate=Decimal("0.5")))
    order_id = (await add(200))["order"]
    async with ctx.db.transaction() as session:
        await session.execute(delete(UserRate))
        await session.execute(
            update(User).where(User.id == user.user_id).values(discount_percent=Decimal(10))
        )
    discounted = (await add(200))["order"]
    charges = {o.id: o.charge for o in await orders_of(ctx, user.user_id)}
    assert charges[order_id] == Decimal("0.1") and charges[discounted] == Decimal("0.18")
    # The category is switched off, then the service is.
    async with ctx.db.transaction() as session:
        await session.execute(update(Category).values(enabled=False))
    assert await add(200) == {"error": "Incorrect service ID"}
    async with ctx.db.transaction() as session:
        await session.execute(update(Category).values(enabled=True))
        await session.execute(update(Service).where(Service.id == sid).values(enabled=False))
    assert await add(200) == {"error": "Incorrect service ID"}
    await ledger_ok(ctx)


async def test_revoked_key_and_blocked_user_refused_on_the_next_add(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    sid = await make_service()
    user = await make_user("10")
    await warm(api, ctx, user.key, sid, "https://x.com/1")
    async with ctx.db.transaction() as session:
        await accounts.revoke_keys(session, user.user_id)
    assert await api(user.key, "add", service=sid, quantity=100, link="https://x.com/2") == {
        "error": "Invalid API key"
    }
    other = await make_user("10")
    await warm(api, ctx, other.key, sid, "https://x.com/3")
    async with ctx.db.transaction() as session:
        await session.execute(update(User).where(User.id == other.user_id).values(status="blocked"))
    assert await api(other.key, "add", service=sid, quantity=100, link="https://x.com/4") == {
        "error": "Invalid API key"
    }
    assert len(await orders_of(ctx, other.user_id)) == 1


async def test_refusals_leave_no_order_and_move_no_money(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    sid = await make_service(rate=Decimal("1"))
    user = await make_user("0.3")
    await warm(api, ctx, user.key, sid, "https://x.com/1")
    spent = Decimal("0.1") * len(await orders_of(ctx, user.user_id))
    assert await api(user.key, "add", service=sid, quantity=100, link="https://x.com/1") == {
        "error": DUPLICATE
    }
    too_much = str(int((Decimal("0.3") - spent) * 1000) + 10)
    assert await api(user.key, "add", service=sid, quantity=too_much, link="https://x.com/2") == {
        "error": "Not enough funds on balance"
    }
    assert len(await orders_of(ctx, user.user_id)) * Decimal("0.1") == spent
    assert await balance(ctx, user.user_id) == Decimal("0.3") - spent
    await ledger_ok(ctx)


async def test_concurrent_identical_fast_adds_one_wins(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    sid = await make_service(rate=Decimal("1"))
    user = await make_user("10")
    await warm(api, ctx, user.key, sid, "https://x.com/warm")
    answers = await asyncio.gather(
        *(
            api(user.key, "add", service=sid, quantity=100, link="https://x.com/same")
            for _ in range(20)
        )
    )
    assert sum("order" in a for a in answers) == 1
    assert all(a == {"error": DUPLICATE} for a in answers if "order" not in a)
    placed = await orders_of(ctx, user.user_id)
    assert [o.link for o in placed].count("https://x.com/same") == 1
    assert await balance(ctx, user.user_id) == Decimal(10) - Decimal("0.1") * len(placed)
    await ledger_ok(ctx)


async def test_multi_status_rendered_by_postgres_equals_the_python_renderer(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user()
    other = await make_user()
    sid = await make_service()
    cases = [
        # (rate, charge, quantity, status, start_count, remains)
        ("0.9", "0.09", 100, "Pending", None, None),
        ("1000", "1000", 1000, "Completed", 5, 0),
        ("0.123456", "0.00012346", 1, "In progress", 10, 1),
        ("0.00001", "0.00000001", 1, "Partial", 0, 1),
        ("12.5", "1.25", 100, "Canceled", None, 100),
        ("0", "0", 10, "Processing", 7, 3),
        ("7", "0.007", 1, "Completed", 1, 0),
        ("1500", "1.5", 1, "Completed", None, None),
    ]
    rows: list[Order] = []
    async with ctx.db.transaction() as session:
        for i, (rate, charge, quantity, status, start, remains) in enumerate(cases):
            rows.append(
                Order(
                    user_id=user.user_id,
                    service_id=sid,
                    type="Default",
                    link=f"https://x.com/{i}",
                    link_normalized=f"x.com/{i}",
                    quantity=quantity,
                    rate=Decimal(rate),
                    charge=Decimal(charge),
                    status=status,
                    start_count=start,
                    remains=remains,
                    upstream_state="manual",
                )
            )
        foreign = Order(
            user_id=other.user_id,
            service_id=sid,
            type="Default",
            link="https://x.com/f",
            link_normalized="x.com/f",
            quantity=10,
            rate=Decimal(1),
            charge=Decimal("0.01"),
            upstream_state="manual",
        )
        session.add_all([*rows, foreign])
    wanted: dict[str, int | None] = {str(o.id): o.id for o in rows}
    wanted.update({str(foreign.id): foreign.id, "999999": 999999, 'x"y': None})
    body = await ctx.hot.statuses(user.key, wanted)
    assert body is not None
    answer = json.loads(body)
    assert list(answer) == list(wanted)  # the order asked
    not_found = {"error": IncorrectOrderId.message}
    async with ctx.db.session() as session:
        for order in rows:
            stored = await session.get(Order, order.id)
            assert stored is not None
            assert answer[str(order.id)] == order_status(stored, "USD"), stored.rate
    assert answer[str(foreign.id)] == answer["999999"] == answer['x"y'] == not_found
    # An invalid key is left to the full path, which names the error.
    assert await ctx.hot.statuses("nope", wanted) is None
