"""Ledger invariants under random interleavings and under a flood of concurrent adds."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app.accounts import service as accounts
from app.catalog.models import Category, Service
from app.context import AppContext
from app.db import Database
from app.errors import DomainError
from app.ledger import service as ledger
from app.orders import service as orders
from app.orders.models import Order
from app.refills import service as refills
from tests.support.api import Api, MakeService, MakeUser
from tests.support.env import TABLES
from tests.support.ledger import ledger_ok

USERS = 3

# Orders are named by their place among the scenario's placed orders (1 = the first placed);
# a place not taken yet names an order that does not exist.
operation = st.one_of(
    st.tuples(st.just("add"), st.integers(0, USERS - 1), st.integers(0, 5), st.integers(5, 400)),
    st.tuples(st.just("cancel"), st.integers(0, USERS - 1), st.integers(1, 25)),
    st.tuples(
        st.just("report"),
        st.integers(1, 25),
        st.sampled_from(["In progress", "Completed", "Partial", "Canceled"]),
        st.integers(-50, 400),
    ),
    st.tuples(st.just("topup"), st.integers(0, USERS - 1), st.integers(1, 500)),
    st.tuples(st.just("refill"), st.integers(0, USERS - 1), st.integers(1, 25)),
)


@dataclass
class Scenario:
    service_id: int
    users: list[int] = field(default_factory=list)
    orders: list[int] = field(default_factory=list)  # ids of the placed orders, in order

    def order_id(self, place: int) -> int:
        """The id of the order placed `place`-th, or an id no order has."""
        if place <= len(self.orders):
            return self.orders[place - 1]
        return max(self.orders, default=0) + place


async def run_scenario(url: str, steps: list[tuple[Any, ...]]) -> None:
    db = Database(url, pool_size=5, max_overflow=0)
    try:
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql(f"TRUNCATE {TABLES} CASCADE")
        async with db.transaction() as session:
            category = Category(name="P")
            session.add(category)
            await session.flush()
            service = Service(
                category_id=category.id,
                name="S",
                rate=Decimal("0.37"),
                min_quantity=5,
                max_quantity=400,
                cancel=True,
                refill=True,
                refill_days=30,
            )
            session.add(service)
            await session.flush()
            scenario = Scenario(service.id)
            for i in range(USERS):
                user = await accounts.create_user(session, email=f"p{i}@x")
                await ledger.credit(
                    session, user_id=user.id, amount=Decimal("0.5"), kind="deposit", reason="start"
                )
                scenario.users.append(user.id)
        for step in steps:
            try:
                async with db.transaction() as session:
                    placed = await apply(session, scenario, step)
                if placed is not None:
                    scenario.orders.append(placed)
            except DomainError:
                pass  # a refusal changes nothing, which the check below also verifies
            async with db.session() as session:
                report = await ledger.check_invariants(session)
            assert report.ok, (step, report.violations)
    finally:
        await db.dispose()


async def apply(session: Any, scenario: Scenario, step: tuple[Any, ...]) -> int | None:
    """Run one step; the id of the order it placed, if it placed one."""
    kind = step[0]
    users = scenario.users
    if kind == "add":
        _, who, link, quantity = step
        placed = await orders.place_order(
            session,
            users[who],
            {
                "service": str(scenario.service_id),
                "link": f"https://x.io/{link}",
                "quantity": str(quantity),
            },
        )
        return placed.order_id
    elif kind == "cancel":
        _, who, place = step
        await orders.cancel_order(session, users[who], scenario.order_id(place))
    elif kind == "report":
        _, place, status, remains = step
        order_id = scenario.order_id(place)
        if await session.get(Order, order_id) is not None:
            await orders.apply_status(
                session, order_id, orders.StatusReport(status, 10, remains), source="test"
            )
    elif kind == "topup":
        _, who, cents = step
        await ledger.credit(
            session, user_id=users[who], amount=Decimal(cents) / 100, kind="deposit", reason="topup"
        )
    else:
        _, who, place = step
        await refills.request_refill(session, users[who], scenario.order_id(place))
    return None


@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
@given(steps=st.lists(operation, min_size=5, max_size=40))
def test_random_interleavings_keep_the_ledger_invariants(
    database_url: str, steps: list[tuple[Any, ...]]
) -> None:
    asyncio.run(run_scenario(database_url, steps))


async def test_1000_concurrent_adds_on_one_account(
    api: Api, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user(balance="500")
    sid = await make_service(rate=Decimal("1.00"), min_quantity=1000, max_quantity=1000)
    results = await asyncio.gather(
        *(
            api(user.key, "add", service=sid, link=f"https://x.io/{i}", quantity=1000)
            for i in range(1000)
        )
    )
    assert sum("order" in r for r in results) == 500
    assert all(r == {"error": "Not enough funds on balance"} for r in results if "order" not in r)
    assert await api(user.key, "balance") == {"balance": "0.00000", "currency": "USD"}
    async with ctx.db.session() as session:
        assert await session.scalar(select(func.count(Order.id))) == 500
    await ledger_ok(ctx)
