"""Each SQL statement of the API v2 hot path that restates a Python rule, run beside its
Python twin on the same rows over a table of cases: both must decide the same."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.responses import JSONResponse
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service as accounts
from app.accounts.models import USER_BLOCKED, User
from app.accounts.service import hash_key
from app.api_v2 import actions, lean
from app.api_v2.render import order_status
from app.catalog import service as catalog
from app.catalog.models import UserRate
from app.catalog.sql import effective_rate, effective_rate_sql
from app.context import AppContext
from app.db import utcnow
from app.errors import DomainError, LinkUnderReview, NotEnoughFunds
from app.flows.commands import ordering
from app.http.tx import AfterCommitJobs
from app.ledger import service as ledger
from app.ledger.models import CHARGE, REFUND, LedgerEntry
from app.orders import service as orders
from app.orders.models import (
    CANCELED,
    COMPLETED,
    IN_PROGRESS,
    PARTIAL,
    PENDING,
    UP_MANUAL,
    UP_QUEUED,
    UP_SENT,
    Order,
)
from app.orders.sql import LOAD_RATE, REQUEST_ORDER, STATUS_ONE, WHO
from app.providers.models import Provider
from app.refills import service as refills
from app.refills.models import Refill
from app.refills.sql import REQUEST_REFILLS
from app.tickets.models import Ticket
from tests.support.api import MakeService, MakeUser, Reseller

D = Decimal


# --- the effective rate ---------------------------------------------------------------

RATE_CASES: list[tuple[str, str | None, str | None]] = [
    # (service rate, discount percent, custom rate)
    ("0.9", "0", None),
    ("0.9", "10", None),
    ("0.9", None, None),
    ("1", "33.33", None),
    ("0.00000015", "50", None),  # half a unit in the last place: away from zero
    ("0.00000001", "50", None),
    ("123.456789", "12.5", None),
    ("7", "100", None),
    ("0", "20", None),
    ("0.9", "10", "0.5"),
    ("0.9", "0", "0"),
    ("99999.99999999", "0.01", None),
]


async def test_rate_sql_is_the_twin_of_effective_rate(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    pool = await ctx.db.driver()
    expression = effective_rate_sql("$1::numeric", "$2::numeric", "$3::numeric")
    for rate, discount, custom in RATE_CASES:
        args = [
            D(rate),
            None if discount is None else D(discount),
            None if custom is None else D(custom),
        ]
        in_sql = await pool.fetchval(f"SELECT {expression}", *args)
        assert args[0] is not None
        assert in_sql == effective_rate(args[0], args[1], args[2]), (rate, discount, custom)
    # And on stored rows: the rate lookup of the hot path and the catalog service.
    for rate, discount, custom in RATE_CASES:
        user = await make_user()
        sid = await make_service(rate=D(rate))
        async with ctx.db.transaction() as session:
            await session.execute(
                update(User)
                .where(User.id == user.user_id)
                .values(discount_percent=D(discount or "0"))
            )
            if custom is not None:
                session.add(UserRate(user_id=user.user_id, service_id=sid, rate=D(custom)))
        async with ctx.db.session() as session:
            offered = await catalog.get_offered(session, user.user_id, sid)
        assert await pool.fetchval(LOAD_RATE, user.user_id, sid) == offered.rate


# --- authentication ---------------------------------------------------------------------


async def test_who_sql_is_the_twin_of_authenticate(ctx: AppContext, make_user: MakeUser) -> None:
    valid, revoked, blocked = await make_user(), await make_user(), await make_user()
    async with ctx.db.transaction() as session:
        await accounts.revoke_keys(session, revoked.user_id)
        await session.execute(
            update(User).where(User.id == blocked.user_id).values(status=USER_BLOCKED)
        )
    pool = await ctx.db.driver()
    for key in (valid.key, revoked.key, blocked.key, "unknown", valid.key.upper()):
        async with ctx.db.session() as session:
            try:
                python: int | None = (await accounts.authenticate(session, key)).user_id
            except DomainError:
                python = None
        assert await pool.fetchval(WHO, hash_key(key)) == python, key


# --- status -------------------------------------------------------------------------------

STATUS_CASES: list[dict[str, Any]] = [
    {"rate": "0.9", "charge": "0.09", "quantity": 100, "status": PENDING},
    {"rate": "1000", "charge": "1000", "quantity": 1000, "status": COMPLETED, "start_count": 5},
    {"rate": "0.123456", "charge": "0.00012346", "quantity": 1, "status": IN_PROGRESS},
    {"rate": "0.00001", "charge": "0.00000001", "quantity": 1, "status": PARTIAL, "remains": 1},
    {"rate": "12.5", "charge": "1.25", "quantity": 100, "status": CANCELED, "remains": 100},
    {"rate": "0", "charge": "0", "quantity": 10, "status": PENDING, "start_count": 7},
    {"rate": "1500", "charge": "1.5", "quantity": 1, "status": COMPLETED},
    {"rate": "1", "charge": "1", "quantity": 1000, "status": PENDING, "runs": 2},
    {"rate": "1", "charge": "1", "quantity": 1000, "status": PENDING, "type": "Subscriptions"},
]


async def _status_cases(
    ctx: AppContext, user: Reseller, sid: int, request_ids: bool = False
) -> list[Order]:
    """One order of `user` per status case (request id `r:<i>.x-<i>` if asked), the user
    paying in EUR."""
    made: list[Order] = []
    async with ctx.db.transaction() as session:
        await session.execute(update(User).where(User.id == user.user_id).values(currency="EUR"))
        for i, case in enumerate(STATUS_CASES):
            values = {"type": "Default", **case}
            made.append(
                Order(
                    user_id=user.user_id,
                    service_id=sid,
                    link=f"https://x.com/{i}",
                    link_normalized=f"x.com/{i}",
                    upstream_state=UP_MANUAL,
                    request_id=f"r:{i}.x-{i}" if request_ids else None,
                    **{k: D(v) if k in ("rate", "charge") else v for k, v in values.items()},
                )
            )
        session.add_all(made)
    return made


async def test_status_json_is_the_twin_of_order_status(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user()
    made = await _status_cases(ctx, user, await make_service())
    pool = await ctx.db.driver()
    for order in made:
        row = await pool.fetchrow(STATUS_ONE, hash_key(user.key), order.id)
        async with ctx.db.session() as session:
            stored = await session.get(Order, order.id)
        assert stored is not None and row is not None and row["found"]
        plain = stored.type != "Subscriptions" and stored.runs is None
        assert row["plain"] == plain
        if plain:
            python = JSONResponse(order_status(stored, "EUR")).body
            assert row["body"].encode() == python, stored.rate
        # The multi-status statement renders the same object.
        multi = await ctx.hot.statuses(user.key, {str(order.id): order.id})
        if plain:
            assert multi == '{"' + str(order.id) + '":' + row["body"] + "}"
        else:
            assert multi is None


async def test_status_by_request_sql_is_the_twin_of_the_full_path(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    """Status by request id from the statement, byte for byte the full path's answer
    (`actions._status_by_request_id`), for every status case and every way to ask."""
    user, other = await make_user(), await make_user()
    sid = await make_service()
    await _status_cases(ctx, user, sid, request_ids=True)
    async with ctx.db.transaction() as session:
        session.add(
            Order(
                user_id=other.user_id,
                service_id=sid,
                link="https://x.com/other",
                link_normalized="x.com/other",
                upstream_state=UP_MANUAL,
                request_id="theirs",
                type="Default",
                rate=D("1"),
                charge=D("1"),
                quantity=1000,
            )
        )
    plain = [
        f"r:{i}.x-{i}" for i, c in enumerate(STATUS_CASES) if "runs" not in c and "type" not in c
    ]
    asks: list[dict[str, str]] = [{"request_id": rid} for rid in plain]
    asks += [
        {"request_id": "theirs"},
        {"request_id": "nope"},
        {"request_id": ""},
        {"request_ids": ",".join(plain)},
        {"request_ids": f"{plain[1]},nope,theirs,{plain[0]},{plain[1]}, {plain[2]} "},
    ]
    for ask in asks:
        fields = {"key": user.key, "action": "status", **ask}
        lean_answer = await lean.status(ctx, fields, None)
        assert lean_answer is not None, ask
        try:
            answer = await actions.run_action(ctx, "status", fields)
        except DomainError as exc:  # answered as direct.py answers it
            answer = {"error": exc.message}
        assert lean_answer.body == JSONResponse(answer).body, ask
    # A drip-feed or subscription order is rendered in Python: the full path answers.
    for i, case in enumerate(STATUS_CASES):
        if "runs" in case or "type" in case:
            fields = {"key": user.key, "action": "status", "request_id": f"r:{i}.x-{i}"}
            assert await lean.status(ctx, fields, None) is None
    blocked = {"key": "no such key", "action": "status", "request_id": plain[0]}
    assert await lean.status(ctx, blocked, None) is None


# --- add ------------------------------------------------------------------------------------

ADD_CASES: list[dict[str, Any]] = [
    # service columns, user discount, custom rate, the add's fields
    {"service": {"rate": D("0.9")}, "fields": {"quantity": "100"}},
    {"service": {"rate": D("0.9")}, "discount": "10", "fields": {"quantity": "1000"}},
    {"service": {"rate": D("0.9")}, "custom": "0.33", "fields": {"quantity": "777"}},
    {"service": {"rate": D("0.0123")}, "discount": "3", "fields": {"quantity": "51"}},
    {"service": {"rate": D("2"), "type": "Package"}, "fields": {}},
    {
        "service": {"rate": D("5"), "type": "Custom Comments", "min_quantity": 1},
        "fields": {"comments": "nice\ngreat\n\nwow"},
    },
    {"service": {"rate": D("1"), "max_quantity": 100000}, "fields": {"quantity": "99999"}},
    # With the client's request id: stored with the digest of the parameters.
    {"service": {"rate": D("0.9")}, "fields": {"quantity": "100", "request_id": "r-1"}},
    {
        "service": {"rate": D("5"), "type": "Custom Comments", "min_quantity": 1},
        "fields": {"comments": "a\nb", "request_id": "Az09._:-" * 8},
    },
]


@dataclass
class Placed:
    order: Order
    entries: list[LedgerEntry]
    balance: Decimal


async def _placed(ctx: AppContext, user: Reseller, order_id: int) -> Placed:
    async with ctx.db.session() as session:
        order = await session.get(Order, order_id)
        entries = list(
            await session.scalars(select(LedgerEntry).where(LedgerEntry.order_id == order_id))
        )
        balance = await session.scalar(select(User.balance).where(User.id == user.user_id))
    assert order is not None and balance is not None
    return Placed(order, entries, balance)


async def _priced_user(
    ctx: AppContext, make_user: MakeUser, case: dict[str, Any], sid: int
) -> Reseller:
    user = await make_user("1000")
    async with ctx.db.transaction() as session:
        await session.execute(
            update(User)
            .where(User.id == user.user_id)
            .values(discount_percent=D(case.get("discount", "0")))
        )
        if "custom" in case:
            session.add(UserRate(user_id=user.user_id, service_id=sid, rate=D(case["custom"])))
    return user


@pytest.mark.parametrize("case", ADD_CASES)
async def test_add_order_sql_is_the_twin_of_place_order(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService, case: dict[str, Any]
) -> None:
    sid = await make_service(**case["service"])
    full_user = await _priced_user(ctx, make_user, case, sid)
    fast_user = await _priced_user(ctx, make_user, case, sid)
    fields = {"service": str(sid), "link": "https://x.com/twin", **case["fields"]}
    async with ctx.db.transaction() as session:
        full_id = (await orders.place_order(session, full_user.user_id, fields)).order_id
    # Caches left by an earlier test (ids restart) are stale: each refusal refreshes one
    # (the service, then the rate), as in production after an operator's change.
    fast = None
    for _ in range(3):
        fast = fast or await ctx.hot.add({**fields, "key": fast_user.key})
    assert fast is not None
    a, b = await _placed(ctx, full_user, full_id), await _placed(ctx, fast_user, fast.order_id)
    same = (
        "service_id",
        "type",
        "link",
        "link_normalized",
        "quantity",
        "runs",
        "interval_minutes",
        "params",
        "rate",
        "charge",
        "refunded",
        "status",
        "upstream_state",
        "provider_id",
        "provider_service_id",
        "next_attempt_at",
        "parent_id",
        "request_id",
        "request_digest",
    )
    assert {f: getattr(a.order, f) for f in same} == {f: getattr(b.order, f) for f in same}
    assert [
        (e.kind, e.amount, e.balance_after, e.reason.replace(str(full_id), "#")) for e in a.entries
    ] == [
        (e.kind, e.amount, e.balance_after, e.reason.replace(str(fast.order_id), "#"))
        for e in b.entries
    ]
    assert a.balance == b.balance
    if "request_id" in fields:
        # The statement's lookup after a refusal is the twin of `find_request`.
        pool = await ctx.db.driver()
        row = await pool.fetchrow(REQUEST_ORDER, fast_user.user_id, fields["request_id"])
        assert row is not None
        async with ctx.db.session() as session:
            found = await orders.find_request(
                session, fast_user.user_id, fields["request_id"], row["request_digest"]
            )
        assert found == row["id"] == fast.order_id


async def test_add_order_sql_refuses_a_target_under_review_as_place_order_does(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    sid = await make_service()
    full_user, fast_user = await make_user("5"), await make_user("5")
    links: dict[int, str] = {}
    for user in (full_user, fast_user):
        await _order_for(
            ctx, user.user_id, sid, {"status": COMPLETED, "upstream_state": UP_SENT, "charge": "1"}
        )
        async with ctx.db.transaction() as session:
            order = await session.scalar(select(Order).where(Order.user_id == user.user_id))
            assert order is not None
            await _review(session, order)
            links[user.user_id] = order.link
    fields = {"service": str(sid), "link": links[full_user.user_id], "quantity": "100"}
    with pytest.raises(LinkUnderReview):
        async with ctx.db.transaction() as session:
            await orders.place_order(session, full_user.user_id, fields)
    fast_fields = {**fields, "link": links[fast_user.user_id], "key": fast_user.key}
    for _ in range(3):  # however warm the caches, the statement never places it
        assert await ctx.hot.add(fast_fields) is None
    async with ctx.db.session() as session:
        placed = await session.scalar(
            select(func.count(Order.id)).where(Order.user_id == fast_user.user_id)
        )
    assert placed == 1


# --- cancel of orders never sent ------------------------------------------------------

CANCEL_CASES: list[dict[str, Any]] = [
    {"upstream_state": UP_QUEUED, "status": PENDING, "charge": "0.9"},
    {"upstream_state": UP_MANUAL, "status": PENDING, "charge": "0.12345678"},
    {"upstream_state": UP_MANUAL, "status": PENDING, "charge": "0"},
    {"upstream_state": UP_SENT, "status": PENDING, "charge": "0.9"},
    {"upstream_state": UP_SENT, "status": IN_PROGRESS, "charge": "0.9"},
    {"upstream_state": UP_MANUAL, "status": IN_PROGRESS, "charge": "0.9"},
    {"upstream_state": UP_MANUAL, "status": COMPLETED, "charge": "0.9"},
    {"upstream_state": UP_MANUAL, "status": CANCELED, "charge": "0.9"},
    {"upstream_state": UP_QUEUED, "status": PENDING, "charge": "0.9", "cancel": False},
    {"upstream_state": UP_QUEUED, "status": PENDING, "charge": "0.9", "foreign": True},
    {"upstream_state": UP_QUEUED, "status": PENDING, "charge": "0.9", "review": True},
    {"upstream_state": UP_MANUAL, "status": PENDING, "charge": "0.9", "review": True},
]

ORDER_STATE = ("status", "upstream_state", "remains", "refunded", "cancel_state")


async def _order_for(ctx: AppContext, owner: int, sid: int, case: dict[str, Any]) -> int:
    link = uuid.uuid4().hex
    async with ctx.db.transaction() as session:
        order = Order(
            user_id=owner,
            service_id=sid,
            type="Default",
            link=f"https://x.com/{link}",
            link_normalized=f"x.com/{link}",
            quantity=1000,
            rate=D("0.9"),
            charge=D(case["charge"]),
            status=case["status"],
            upstream_state=case["upstream_state"],
        )
        session.add(order)
        if case.get("review"):
            await session.flush()
            await _review(session, order)
    return order.id


async def _review(session: AsyncSession, order: Order) -> None:
    """Put the order under review by a Support ticket of its owner (ToS 2.5)."""
    ticket = Ticket(user_id=order.user_id, subject="s", category="order", order_ids=[order.id])
    session.add(ticket)
    await session.flush()
    order.review_ticket_id = ticket.id


@pytest.mark.parametrize("case", CANCEL_CASES)
async def test_withdraw_sql_is_the_twin_of_stop_order(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService, case: dict[str, Any]
) -> None:
    sid = await make_service(cancel=case.get("cancel", True))
    stranger = await make_user("5")
    full_user, fast_user = await make_user("5"), await make_user("5")
    full_id = await _order_for(
        ctx, stranger.user_id if case.get("foreign") else full_user.user_id, sid, case
    )
    fast_id = await _order_for(
        ctx, stranger.user_id if case.get("foreign") else fast_user.user_id, sid, case
    )
    before = await _placed(ctx, full_user, full_id)
    try:
        async with ctx.db.transaction() as session:
            due = await orders.cancel_order(session, full_user.user_id, full_id)
    except DomainError:
        due = None
    withdrawn = await ctx.hot.withdraw(fast_user.key, [fast_id])
    assert withdrawn is not None
    a, b = await _placed(ctx, full_user, full_id), await _placed(ctx, fast_user, fast_id)
    if fast_id in withdrawn:
        assert due == []  # the full path withdrew it too
        assert {f: getattr(a.order, f) for f in ORDER_STATE} == {
            f: getattr(b.order, f) for f in ORDER_STATE
        }
        assert a.order.finished_at is not None and b.order.finished_at is not None
        assert [
            (e.kind, e.amount, e.balance_after, e.reason.replace(str(full_id), "#"))
            for e in a.entries
        ] == [
            (e.kind, e.amount, e.balance_after, e.reason.replace(str(fast_id), "#"))
            for e in b.entries
        ]
        assert a.balance == b.balance
    else:
        # Not the statement's to settle: untouched, and the full path did not withdraw it.
        assert due != []
        unchanged = await _placed(ctx, fast_user, fast_id)
        assert {f: getattr(unchanged.order, f) for f in ORDER_STATE} == {
            f: getattr(before.order, f) for f in ORDER_STATE
        }
        assert unchanged.entries == [] and unchanged.balance == D(5)


# --- refill -------------------------------------------------------------------------------

REFILL_CASES: list[dict[str, Any]] = [
    {"status": COMPLETED, "upstream_state": UP_SENT},
    {"status": PARTIAL, "upstream_state": UP_MANUAL},
    {"status": IN_PROGRESS, "upstream_state": UP_SENT},
    {"status": CANCELED, "upstream_state": UP_SENT},
    {"status": COMPLETED, "upstream_state": UP_SENT, "refill": False},
    {"status": COMPLETED, "upstream_state": UP_SENT, "refill_days": 30, "finished_days": 29},
    {"status": COMPLETED, "upstream_state": UP_SENT, "refill_days": 30, "finished_days": 31},
    {"status": COMPLETED, "upstream_state": UP_SENT, "refill_days": 0, "finished_days": 900},
    {"status": COMPLETED, "upstream_state": UP_SENT, "active": True},
    {"status": COMPLETED, "upstream_state": UP_SENT, "foreign": True},
    {"status": COMPLETED, "upstream_state": UP_SENT, "review": True},
    {"status": PARTIAL, "upstream_state": UP_MANUAL, "review": True},
]


async def _refillable(ctx: AppContext, owner: Reseller, sid: int, case: dict[str, Any]) -> int:
    order_id = await _order_for(ctx, owner.user_id, sid, {**case, "charge": "0.9"})
    async with ctx.db.transaction() as session:
        finished = utcnow() - timedelta(days=case.get("finished_days", 0))
        await session.execute(
            update(Order).where(Order.id == order_id).values(finished_at=finished)
        )
        if case.get("active"):
            await refills.request_refill(session, owner.user_id, order_id)
    return order_id


@pytest.mark.parametrize("case", REFILL_CASES)
async def test_refill_sql_is_the_twin_of_request_refill(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService, case: dict[str, Any]
) -> None:
    sid = await make_service(
        refill=case.get("refill", True), refill_days=case.get("refill_days", 0)
    )
    full_user, fast_user, stranger = await make_user(), await make_user(), await make_user()
    owner_full = stranger if case.get("foreign") else full_user
    owner_fast = stranger if case.get("foreign") else fast_user
    full_id = await _refillable(ctx, owner_full, sid, case)
    fast_id = await _refillable(ctx, owner_fast, sid, case)
    try:
        async with ctx.db.transaction() as session:
            full: Refill | None = await refills.request_refill(session, full_user.user_id, full_id)
    except DomainError:
        full = None
    pool = await ctx.db.driver()
    rows = await pool.fetch(REQUEST_REFILLS, hash_key(fast_user.key), [fast_id])
    made = [r for r in rows if r["refill_id"] is not None]
    assert (full is not None) == bool(made), case
    if full is not None:
        async with ctx.db.session() as session:
            fast = await session.get(Refill, made[0]["refill_id"])
        assert fast is not None
        same = ("status", "upstream_state", "attempts", "provider_refill_id")
        assert {f: getattr(full, f) for f in same} == {f: getattr(fast, f) for f in same}
        assert (full.next_attempt_at is None) == (fast.next_attempt_at is None)
        assert fast.user_id == fast_user.user_id and fast.order_id == fast_id


# --- the lean statements and the commands every other front end calls -------------------


async def _queued_jobs(ctx: AppContext) -> list[str]:
    """The jobs waiting in Redis, by kind (`relay:due`, `cancel:order`, `relay:refill`)."""
    assert ctx.jobs.redis is not None
    prefix = f"{ctx.jobs.queue_name}:"
    named = [
        j.decode().removeprefix(prefix) for j in await ctx.jobs.redis.zrange(prefix[:-1], 0, -1)
    ]
    return sorted(name.rsplit(":", 1)[0] for name in named)


async def _provider(ctx: AppContext) -> int:
    async with ctx.db.transaction() as session:
        provider = Provider(name="Up", url="http://127.0.0.1:9/api/v2", api_key_encrypted="x")
        session.add(provider)
    return provider.id


@pytest.mark.parametrize("relayed", [True, False])
async def test_lean_add_is_the_twin_of_the_place_order_command(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService, relayed: bool
) -> None:
    """The same order, charge and ledger entry, the same answer, and the same job: a relay
    kick for an order due upstream, none for one fulfilled by hand."""
    mapping = {"provider_id": await _provider(ctx), "provider_service_id": "7"} if relayed else {}
    sid = await make_service(**mapping)
    full_user, fast_user = await make_user("5"), await make_user("5")
    fields = {"service": str(sid), "link": "https://x.com/cmd", "quantity": "100"}
    assert ctx.jobs.redis is not None
    await ctx.jobs.redis.flushdb()
    async with ctx.db.transaction() as tx:
        placed = await ordering.place_order(
            tx, AfterCommitJobs(tx, ctx.jobs), full_user.user_id, fields
        )
    by_command = await _queued_jobs(ctx)
    await ctx.jobs.redis.flushdb()
    answer = None
    for _ in range(3):  # stale caches of an earlier test: each refusal refreshes one
        answer = answer or await lean.add(ctx, {**fields, "key": fast_user.key}, None)
    assert answer is not None
    fast_id = json.loads(bytes(answer.body))["order"]
    assert await _queued_jobs(ctx) == by_command == (["relay:due"] if relayed else [])
    await ctx.jobs.redis.flushdb()
    a, b = await _placed(ctx, full_user, placed.order_id), await _placed(ctx, fast_user, fast_id)
    same = ("charge", "status", "upstream_state", "provider_id", "next_attempt_at")
    assert {f: getattr(a.order, f) is None for f in same} == {
        f: getattr(b.order, f) is None for f in same
    }
    assert {f: getattr(a.order, f) for f in same if f != "next_attempt_at"} == {
        f: getattr(b.order, f) for f in same if f != "next_attempt_at"
    }
    assert [(e.kind, e.amount, e.balance_after) for e in a.entries] == [
        (e.kind, e.amount, e.balance_after) for e in b.entries
    ]


@pytest.mark.parametrize("case", CANCEL_CASES)
async def test_lean_cancel_is_the_twin_of_the_cancel_orders_command(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService, case: dict[str, Any]
) -> None:
    """Each id answered alike (`1` or the refusal's message), the same jobs queued (the
    cancel of an order already sent goes upstream)."""
    sid = await make_service(cancel=case.get("cancel", True))
    stranger = await make_user("5")
    full_user, fast_user = await make_user("5"), await make_user("5")
    full_owner = stranger if case.get("foreign") else full_user
    fast_owner = stranger if case.get("foreign") else fast_user
    full_id = await _order_for(ctx, full_owner.user_id, sid, case)
    fast_id = await _order_for(ctx, fast_owner.user_id, sid, case)
    assert ctx.jobs.redis is not None
    await ctx.jobs.redis.flushdb()
    async with ctx.db.transaction() as tx:
        jobs = AfterCommitJobs(tx, ctx.jobs)
        (result,) = await ordering.cancel_orders(tx, jobs, full_user.user_id, [full_id])
    by_command = await _queued_jobs(ctx)
    await ctx.jobs.redis.flushdb()
    answer = await lean.cancel(
        ctx, {"key": fast_user.key, "action": "cancel", "orders": str(fast_id)}, None
    )
    assert answer is not None
    (fast,) = json.loads(bytes(answer.body))
    expected = {"error": result.message} if isinstance(result, DomainError) else 1
    assert fast == {"order": fast_id, "cancel": expected}
    assert await _queued_jobs(ctx) == by_command
    await ctx.jobs.redis.flushdb()


@pytest.mark.parametrize("case", REFILL_CASES)
async def test_lean_refill_is_the_twin_of_the_request_refill_command(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService, case: dict[str, Any]
) -> None:
    """A refill made alike or refused alike, with the same job: a relay of the refill of an
    order sent upstream."""
    sid = await make_service(
        refill=case.get("refill", True), refill_days=case.get("refill_days", 0)
    )
    full_user, fast_user, stranger = await make_user(), await make_user(), await make_user()
    full_id = await _refillable(ctx, stranger if case.get("foreign") else full_user, sid, case)
    fast_id = await _refillable(ctx, stranger if case.get("foreign") else fast_user, sid, case)
    assert ctx.jobs.redis is not None
    await ctx.jobs.redis.flushdb()
    try:
        async with ctx.db.transaction() as tx:
            jobs = AfterCommitJobs(tx, ctx.jobs)
            made: object = await ordering.request_refill(tx, jobs, full_user.user_id, full_id)
    except DomainError as exc:
        made = exc
    by_command = await _queued_jobs(ctx)
    await ctx.jobs.redis.flushdb()
    fields = {"key": fast_user.key, "action": "refill", "order": str(fast_id)}
    answer = await lean.refill(ctx, fields, None)
    if isinstance(made, DomainError):
        # Not the statement's: the full path answers, with the command's refusal.
        assert answer is None
        with pytest.raises(DomainError) as refused:
            await actions.run_action(ctx, "refill", fields)
        assert refused.value.message == made.message
    else:
        assert answer is not None and set(json.loads(bytes(answer.body))) == {"refill"}
    assert await _queued_jobs(ctx) == by_command
    await ctx.jobs.redis.flushdb()


# --- the ledger's rules, restated by the statements that move money ---------------------

DEBIT_CASES: list[dict[str, Any]] = [
    # balance, credit limit, whether the user is blocked: a 1.00 charge
    {"balance": "1", "limit": "0"},
    {"balance": "0.99", "limit": "0"},
    {"balance": "0.5", "limit": "0.5"},
    {"balance": "0.49", "limit": "0.5"},
    {"balance": "0", "limit": "1"},
    {"balance": "5", "limit": "0", "blocked": True},
]


async def _funded(ctx: AppContext, make_user: MakeUser, case: dict[str, Any]) -> Reseller:
    user = await make_user(case["balance"])
    async with ctx.db.transaction() as session:
        await session.execute(
            update(User)
            .where(User.id == user.user_id)
            .values(
                credit_limit=D(case["limit"]),
                status=USER_BLOCKED if case.get("blocked") else User.status,
            )
        )
    return user


@pytest.mark.parametrize("case", DEBIT_CASES)
async def test_add_order_sql_debits_as_the_ledgers_debit_does(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService, case: dict[str, Any]
) -> None:
    """ADD_ORDER moves money outside app/ledger: it takes a charge under the same floor
    (balance - charge >= -credit_limit), only from an active user, to the same balance."""
    sid = await make_service(rate=D("1"), min_quantity=10)
    ledger_user, fast_user = (
        await _funded(ctx, make_user, case),
        await _funded(ctx, make_user, case),
    )
    try:
        async with ctx.db.transaction() as session:
            moved = await ledger.debit(
                session, user_id=ledger_user.user_id, amount=D("1"), kind=CHARGE, reason="Order"
            )
        by_ledger: Decimal | None = moved.balance_after
    except NotEnoughFunds:
        by_ledger = None
    fields = {"service": str(sid), "link": "https://x.com/floor", "quantity": "1000"}
    fast = None
    for _ in range(3):
        fast = fast or await ctx.hot.add({**fields, "key": fast_user.key})
    after = await _placed(ctx, fast_user, fast.order_id) if fast is not None else None
    if by_ledger is None:
        assert fast is None
    else:
        assert after is not None and [e.balance_after for e in after.entries] == [by_ledger]
        assert after.balance == by_ledger


async def test_withdraw_sql_credits_as_the_ledgers_credit_does(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    """WITHDRAW moves money outside app/ledger: several refunds in one statement leave the
    entries (amounts and the balance after each, in the order asked) that `refund` through
    ledger.credit leaves one by one."""
    sid = await make_service()
    charges = ["0.9", "0.12345678", "0", "2"]
    full_user, fast_user = await make_user("5"), await make_user("5")
    case = {"upstream_state": UP_QUEUED, "status": PENDING}
    full_ids = [
        await _order_for(ctx, full_user.user_id, sid, {**case, "charge": c}) for c in charges
    ]
    fast_ids = [
        await _order_for(ctx, fast_user.user_id, sid, {**case, "charge": c}) for c in charges
    ]
    async with ctx.db.transaction() as session:
        for order_id, charge in zip(full_ids, charges, strict=True):
            await orders.refund(
                session, order_id=order_id, amount=D(charge), reason="Canceled before sending"
            )
    order = list(reversed(fast_ids))  # asked in another order than made
    assert await ctx.hot.withdraw(fast_user.key, order) == set(fast_ids)

    async def entries(user: Reseller, ids: list[int]) -> list[tuple[str, Decimal, Decimal, str]]:
        async with ctx.db.session() as session:
            rows = await session.scalars(
                select(LedgerEntry)
                .where(LedgerEntry.user_id == user.user_id, LedgerEntry.kind == REFUND)
                .order_by(LedgerEntry.id)
            )
            return [
                (e.kind, e.amount, e.balance_after, e.reason.replace(str(e.order_id), "#"))
                for e in rows
            ]

    by_ledger = await entries(full_user, full_ids)
    by_statement = await entries(fast_user, fast_ids)
    # The statement refunds in the order asked; ledger.credit was called in the order made.
    assert [e[1] for e in by_statement] == [e[1] for e in reversed(by_ledger)]
    balance = D(5)
    for kind, amount, after, reason in by_statement:
        balance += amount
        assert (kind, after, reason) == (REFUND, balance, "Order #: Canceled before sending")
    assert by_ledger[-1][2] == by_statement[-1][2] == D("5") + sum(D(c) for c in charges)
