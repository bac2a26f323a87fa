"""Group commit of one user's adds (app/orders/group.py, app/orders/sql.py ADD_ORDERS): adds
of one user placed together by one statement decide exactly what the same adds placed one
after the other by the full path decide: the same orders, charges, refusals and ledger
entries, in arrival order; the duplicate rule, review locks and request ids hold inside a
group as across groups."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, update

from app.accounts.models import User
from app.accounts.service import hash_key
from app.context import AppContext
from app.errors import DomainError, DuplicateActiveOrder, NotEnoughFunds
from app.flows.commands import ordering
from app.http.tx import AfterCommitJobs
from app.ledger.models import LedgerEntry
from app.orders import group, hot
from app.orders import service as orders
from app.orders.hot import FastAdd, GroupItem, Undecided
from app.orders.models import Order
from app.orders.service import request_digest, request_id_of
from app.tickets.models import Ticket
from tests.support.api import Api, MakeService, MakeUser, Reseller, order_id_of
from tests.support.client import MakeCustomer

D = Decimal


async def _items(ctx: AppContext, user: Reseller, adds: list[dict[str, str]]) -> list[GroupItem]:
    """The adds as the hot path judges them (a fresh copy of each service and rate)."""
    pool = await ctx.db.driver()
    items = []
    for fields in adds:
        cached = await hot.service_of(pool, int(fields["service"]))
        rate = await hot.rate_of(pool, user.user_id, int(fields["service"]))
        assert cached is not None and rate is not None
        prepared = hot.prepare(cached.service, rate, fields)
        assert prepared is not None
        request_id = request_id_of(fields)
        asked = request_digest(fields) if request_id is not None else None
        items.append(GroupItem(cached, rate, prepared, request_id, asked))
    return items


async def _one_by_one(ctx: AppContext, user: Reseller, adds: list[dict[str, str]]) -> list[Any]:
    """Each add by the full path on its own, in order: its order id or its refusal."""
    answers: list[Any] = []
    for fields in adds:
        try:
            async with ctx.db.transaction() as session:
                placed = await orders.place_order(session, user.user_id, fields)
            answers.append(placed.order_id)
        except DomainError as exc:
            answers.append(exc.message)
    return answers


async def _grouped(ctx: AppContext, user: Reseller, adds: list[dict[str, str]]) -> list[Any]:
    """The adds placed in groups in order (as a mass order's lines are): each one's order
    id or refusal; a stale one by the full path, after its group."""
    items = await _items(ctx, user, adds)
    pool = await ctx.db.driver()
    outcomes = await group.place_in_order(pool, hash_key(user.key), user.user_id, items)
    answers: list[Any] = []
    for fields, outcome in zip(adds, outcomes, strict=True):
        if isinstance(outcome, FastAdd):
            answers.append(outcome.order_id)
        elif isinstance(outcome, DomainError):
            answers.append(outcome.message)
        else:
            answers.extend(await _one_by_one(ctx, user, [fields]))
    return answers


@dataclass
class Books:
    balance: Decimal
    entries: list[tuple[str, Decimal, Decimal, int | None]]  # kind, amount, balance after, #
    orders: list[tuple[str, Decimal, str | None]]  # link, charge, request id


async def _books(ctx: AppContext, user: Reseller) -> Books:
    """A user's balance, ledger entries and orders, in order, with order ids replaced by
    their rank among the user's orders (two users' ids differ)."""
    async with ctx.db.session() as session:
        balance = await session.scalar(select(User.balance).where(User.id == user.user_id))
        placed = list(
            await session.scalars(
                select(Order).where(Order.user_id == user.user_id).order_by(Order.id)
            )
        )
        rank = {o.id: n for n, o in enumerate(placed)}
        entries = list(
            await session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.user_id == user.user_id)
                .order_by(LedgerEntry.id)
            )
        )
    assert balance is not None
    return Books(
        balance,
        [
            (e.kind, e.amount, e.balance_after, rank[e.order_id] if e.order_id else None)
            for e in entries
        ],
        [(o.link, o.charge, o.request_id) for o in placed],
    )


def _ranked(answers: list[Any], user_orders: list[int]) -> list[Any]:
    rank = {order_id: n for n, order_id in enumerate(sorted(user_orders))}
    return [f"order #{rank[a]}" if isinstance(a, int) else a for a in answers]


async def _order_ids(ctx: AppContext, user: Reseller) -> list[int]:
    async with ctx.db.session() as session:
        return list(await session.scalars(select(Order.id).where(Order.user_id == user.user_id)))


def _add(sid: int, link: str, quantity: int = 1000, **more: str) -> dict[str, str]:
    return {"service": str(sid), "link": f"https://x.com/{link}", "quantity": str(quantity), **more}


# Each case: the balance, the credit limit, the adds (service index, link, quantity, extra
# fields), adds placed one by one before the group (on both users).
CASES: list[dict[str, Any]] = [
    {  # the balance covers only some: a later add that would overdraw fails alone
        "balance": "2.5",
        "adds": [("a", 1000), ("b", 1000), ("c", 1000), ("d", 500), ("e", 100)],
    },
    {  # the duplicate rule inside one group, and against an order placed before
        "balance": "10",
        "before": [("old", 1000)],
        "adds": [("a", 1000), ("a", 1000), ("old", 1000), ("b", 1000)],
    },
    {  # a target refused for funds is free again for a cheaper add after it
        "balance": "1",
        "adds": [("a", 2000), ("a", 1000), ("b", 1000)],
    },
    {  # request ids: a repeat answers the same order, other parameters are refused
        "balance": "10",
        "adds": [
            ("a", 1000, {"request_id": "r1"}),
            ("a", 1000, {"request_id": "r1"}),
            ("b", 1000, {"request_id": "r1"}),
            ("c", 1000, {"request_id": "r2"}),
        ],
    },
    {  # a request id placed before answers even when the balance is empty now
        "balance": "0.9",
        "before": [("a", 1000, {"request_id": "r1"})],
        "adds": [("a", 1000, {"request_id": "r1"}), ("b", 1000)],
    },
    {  # the credit floor
        "balance": "1",
        "credit": "1",
        "adds": [("a", 1000), ("b", 1000), ("c", 1000)],
    },
]


def _fields(sid: int, spec: tuple[Any, ...]) -> dict[str, str]:
    link, quantity, *more = spec
    return _add(sid, link, quantity, **(more[0] if more else {}))


async def _user(ctx: AppContext, make_user: MakeUser, case: dict[str, Any]) -> Reseller:
    user = await make_user(case["balance"])
    if "credit" in case:
        async with ctx.db.transaction() as session:
            await session.execute(
                update(User).where(User.id == user.user_id).values(credit_limit=D(case["credit"]))
            )
    return user


@pytest.mark.parametrize("case", CASES)
async def test_add_orders_sql_is_the_twin_of_place_order_one_by_one(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService, case: dict[str, Any]
) -> None:
    sid = await make_service(min_quantity=10)
    sequential, grouped = await _user(ctx, make_user, case), await _user(ctx, make_user, case)
    before = [_fields(sid, spec) for spec in case.get("before", [])]
    adds = [_fields(sid, spec) for spec in case["adds"]]
    for user in (sequential, grouped):
        await _one_by_one(ctx, user, before)
    by_one = await _one_by_one(ctx, sequential, adds)
    by_group = await _grouped(ctx, grouped, adds)
    assert _ranked(by_group, await _order_ids(ctx, grouped)) == _ranked(
        by_one, await _order_ids(ctx, sequential)
    )
    assert await _books(ctx, grouped) == await _books(ctx, sequential)


async def test_add_orders_sql_never_places_a_repeated_target_twice(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    """Whatever its caller sends: two items on one target in one statement, the second is
    left for the next statement, nothing charged for it."""
    sid = await make_service()
    user = await make_user("10")
    items = await _items(ctx, user, [_add(sid, "a"), _add(sid, "a"), _add(sid, "b")])
    pool = await ctx.db.driver()
    outcomes = await group.place_group(pool, hash_key(user.key), user.user_id, items)
    assert outcomes[1] is Undecided.AGAIN
    assert isinstance(outcomes[0], FastAdd) and isinstance(outcomes[2], FastAdd)
    books = await _books(ctx, user)
    assert books.balance == D("8.2") and len(books.orders) == 2 and len(books.entries) == 3


async def test_add_orders_sql_leaves_a_stale_copy_and_a_review_lock_to_the_full_path(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    sid, other = await make_service(), await make_service()
    user = await make_user("10")
    items = await _items(ctx, user, [_add(sid, "a"), _add(other, "b"), _add(sid, "c")])
    async with ctx.db.transaction() as session:
        reviewed = Order(
            user_id=user.user_id,
            service_id=sid,
            type="Default",
            link="https://x.com/c",
            link_normalized=items[2].order.request.link_normalized,
            quantity=1000,
            rate=D("0.9"),
            charge=D("0"),
            status="Completed",
            upstream_state="manual",
        )
        session.add(reviewed)
        await session.flush()
        ticket = Ticket(
            user_id=user.user_id, subject="s", category="order", order_ids=[reviewed.id]
        )
        session.add(ticket)
        await session.flush()
        reviewed.review_ticket_id = ticket.id
        # The second service changes after its copy was read.
        await session.execute(text_update_rate(other))
    pool = await ctx.db.driver()
    outcomes = await group.place_group(pool, hash_key(user.key), user.user_id, items)
    assert isinstance(outcomes[0], FastAdd)
    assert outcomes[1:] == [Undecided.STALE, Undecided.STALE]
    assert (await _books(ctx, user)).balance == D("9.1")


def text_update_rate(service_id: int) -> Any:
    from app.catalog.models import Service

    return update(Service).where(Service.id == service_id).values(rate=D("1.5"))


async def test_a_revoked_key_or_blocked_user_settles_nothing_even_for_a_known_request_id(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    sid = await make_service()
    user = await make_user("10")
    await _one_by_one(ctx, user, [_add(sid, "a", request_id="r1")])
    items = await _items(ctx, user, [_add(sid, "a", request_id="r1"), _add(sid, "b")])
    async with ctx.db.transaction() as session:
        await session.execute(update(User).where(User.id == user.user_id).values(status="blocked"))
    pool = await ctx.db.driver()
    outcomes = await group.place_group(pool, hash_key(user.key), user.user_id, items)
    assert outcomes == [Undecided.STALE, Undecided.STALE]


# --- concurrent adds of one user through the hot path ---------------------------------


async def _warm(ctx: AppContext, user: Reseller, sid: int) -> None:
    """The hot path's caches hold the key, the service and the rate (so concurrent adds
    reach the group in the order they were started)."""
    placed = await ctx.hot.add({**_add(sid, "warm", 10), "key": user.key})
    assert placed is not None


async def _settle(ctx: AppContext, user: Reseller, fields: dict[str, str]) -> Any:
    try:
        placed = await ctx.hot.add({**fields, "key": user.key})
    except DomainError as exc:
        return exc.message
    return placed.order_id if placed is not None else None


async def test_concurrent_adds_of_one_user_charge_exactly_those_the_balance_covers_in_order(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    sid = await make_service(min_quantity=10)
    user = await make_user("3.209")  # 0.009 for the warm-up, then 3.2
    await _warm(ctx, user, sid)
    statements = ctx.hot.groups.statements
    adds = [_add(sid, f"l{n}", q) for n, q in enumerate([1000, 1000, 2000, 1000, 500, 1000])]
    answers = await asyncio.gather(*(_settle(ctx, user, a) for a in adds))
    funds = NotEnoughFunds.message
    assert [a == funds for a in answers] == [False, False, True, False, False, True]
    placed = [a for a in answers if isinstance(a, int)]
    assert placed == sorted(placed) and len(placed) == 4  # in arrival order
    assert 1 <= ctx.hot.groups.statements - statements <= 2
    books = await _books(ctx, user)
    assert books.balance == D("0.05")
    assert [(amount, after) for kind, amount, after, _ in books.entries[2:]] == [
        (D("-0.9"), D("2.3")),
        (D("-0.9"), D("1.4")),
        (D("-0.9"), D("0.5")),
        (D("-0.45"), D("0.05")),
    ]
    assert [rank for *_, rank in books.entries[1:]] == [0, 1, 2, 3, 4]


async def test_concurrent_duplicate_links_and_request_ids_inside_one_group(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService, api: Api
) -> None:
    sid = await make_service(min_quantity=10)
    user = await make_user("100")
    await _warm(ctx, user, sid)
    same_link = [_add(sid, "dup") for _ in range(3)]
    same_id = [_add(sid, "rid", request_id="r-1") for _ in range(3)]
    other_params = [_add(sid, "rid2", request_id="r-1")]
    calls = same_link + same_id + other_params + [_add(sid, "free")]
    answers = await asyncio.gather(*(api(user.key, "add", **fields) for fields in calls))
    dup = {"error": DuplicateActiveOrder.message}
    assert sorted(map(str, answers[:3])).count(str(dup)) == 2
    by_id = {order_id_of(a) for a in answers[3:6]}
    assert len(by_id) == 1  # one order for the request id, charged once
    assert answers[6] == {"error": "Request ID already used with other parameters"}
    order_id_of(answers[7])
    books = await _books(ctx, user)
    assert len(books.orders) == 4  # warm-up, dup, rid, free
    assert [e[0] for e in books.entries].count("charge") == 4
    assert books.balance == D("100") - D("0.009") - 3 * D("0.9")


async def test_many_concurrent_adds_with_the_full_path_never_spend_money_twice(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService, api: Api
) -> None:
    """One user's adds through API v2 (grouped) and through the full path's command at
    once, more than the balance covers: every order charged once, the balance the sum of
    the entries, never below zero."""
    sid = await make_service(min_quantity=10)
    user = await make_user("20")

    async def full(n: int) -> Any:
        try:
            async with ctx.db.transaction() as tx:
                placed = await ordering.place_order(
                    tx, AfterCommitJobs(tx, ctx.jobs), user.user_id, _add(sid, f"f{n}")
                )
            return placed.order_id
        except DomainError as exc:
            return exc.message

    for round_ in range(3):
        calls = [api(user.key, "add", **_add(sid, f"r{round_}n{n}")) for n in range(12)]
        await asyncio.gather(*calls, *(full(round_ * 10 + n) for n in range(3)))
    async with ctx.db.session() as session:
        balance = await session.scalar(select(User.balance).where(User.id == user.user_id))
        total = await session.scalar(
            select(func.sum(LedgerEntry.amount)).where(LedgerEntry.user_id == user.user_id)
        )
        placed = await session.scalar(
            select(func.count()).select_from(Order).where(Order.user_id == user.user_id)
        )
        charged = await session.scalar(
            select(func.count(func.distinct(LedgerEntry.order_id))).where(
                LedgerEntry.user_id == user.user_id, LedgerEntry.kind == "charge"
            )
        )
        entries = await session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "charge")
        )
    assert balance is not None and balance >= 0 and balance == total
    assert placed == charged == entries == 22  # 20 / 0.9 = 22 orders, 0.2 left
    assert balance == D("0.2")


# --- mass orders through the same statement ---------------------------------------------


async def test_a_300_line_mass_order_is_a_few_statements(
    ctx: AppContext,
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    """Its services and rates read once, its lines placed MAX_GROUP at a time: the whole
    request (signing in, the transaction) is at most 8 statements, where one statement
    per line (or more) was the rule; every line placed and charged once, in line order."""
    customer = await make_customer("1000")
    sid, other = await make_service(min_quantity=10), await make_service(min_quantity=10)
    lines = [f"{sid if n % 2 else other}|https://x.com/m{n}|1000" for n in range(300)]
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = ctx.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        response = await client.post(
            "/client/v1/orders/mass", headers=customer.auth, json={"lines": "\n".join(lines)}
        )
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200, response.text
    placed = [r["order"] for r in response.json()["results"]]
    assert all(placed) and placed == sorted(placed) and len(set(placed)) == 300
    assert len(statements) <= 8, statements
    assert sum("WITH RECURSIVE" in s for s in statements) == 3  # 300 / MAX_GROUP
    books = await _books(ctx, Reseller(customer.user_id, customer.key))
    assert books.balance == D("1000") - 300 * D("0.9")
    assert [e[3] for e in books.entries if e[0] == "charge"] == list(range(300))


async def test_adds_waiting_behind_a_request_that_goes_away_are_still_placed(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    """The first add runs its statement itself; when its caller goes away meanwhile, the
    adds queued behind it are placed all the same, and nothing is left queued."""
    sid = await make_service(min_quantity=10)
    user = await make_user("10")
    await _warm(ctx, user, sid)
    first = asyncio.create_task(_settle(ctx, user, _add(sid, "gone")))
    await asyncio.sleep(0)  # its statement is in flight
    behind = [asyncio.create_task(_settle(ctx, user, _add(sid, f"b{n}"))) for n in range(3)]
    await asyncio.sleep(0)
    first.cancel()
    answers = await asyncio.wait_for(asyncio.gather(*behind), 10)
    assert all(isinstance(a, int) for a in answers)
    assert ctx.hot.groups._queues == {}
    books = await _books(ctx, user)
    placed = len(books.orders) - 1  # the warm-up's
    assert len([e for e in books.entries if e[0] == "charge"]) == placed + 1 >= 4
