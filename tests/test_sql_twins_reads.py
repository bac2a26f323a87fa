"""The statements of the domains' sql.py that read (or write a shown fact) for a hot path
or a report, each run beside its Python twin on the same rows: the balance and the service
row of API v2's lean path, refill statuses, what `services` is keyed by, the posts a
subscription shows, and the margin report's revenue, orders, cost and names."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import func, select, text, update

from app.accounts import service as accounts
from app.accounts.models import USER_BLOCKED, User
from app.accounts.service import hash_key
from app.api_v2.render import order_status
from app.catalog.models import CatalogVersion, Service, UserRate
from app.catalog.sql import CATALOG_PRICING, CATALOG_VERSION, USER_PRICING
from app.context import AppContext
from app.db import utcnow
from app.errors import DomainError
from app.ledger import service as ledger
from app.ledger.models import CHARGE, REFUND, LedgerEntry
from app.orders.models import CANCELED, COMPLETED, PARTIAL, UP_MANUAL, UP_SENT, Order
from app.orders.sql import BALANCE, LOAD_SERVICE, POSTS_SQL, SUBSCRIPTIONS
from app.providers.models import Provider
from app.refills import service as refills
from app.refills.models import Refill
from app.refills.sql import REFILL_STATUSES
from app.reports.service import order_cost, unpriced
from app.reports.sql import COST, GROUPS, ORDERS, REVENUE
from tests.support.api import MakeService, MakeUser, Reseller

D = Decimal


async def _keys(ctx: AppContext, make_user: MakeUser) -> list[Reseller]:
    """A valid key, a revoked one and a blocked user's."""
    valid, revoked, blocked = await make_user("12.5"), await make_user("3"), await make_user("1")
    async with ctx.db.transaction() as session:
        await accounts.revoke_keys(session, revoked.user_id)
        await session.execute(
            update(User).where(User.id == blocked.user_id).values(status=USER_BLOCKED)
        )
        await session.execute(update(User).where(User.id == valid.user_id).values(currency="EUR"))
    return [valid, revoked, blocked]


async def test_balance_sql_is_the_twin_of_the_full_paths_balance(
    ctx: AppContext, make_user: MakeUser
) -> None:
    pool = await ctx.db.driver()
    for user in await _keys(ctx, make_user):
        async with ctx.db.session() as session:
            try:
                who = await accounts.authenticate(session, user.key)
                balance = await session.scalar(select(User.balance).where(User.id == who.user_id))
                python: tuple[Decimal | None, str] | None = (balance, who.currency)
            except DomainError:
                python = None
        row = await pool.fetchrow(BALANCE, hash_key(user.key))
        assert (None if row is None else (row["balance"], row["currency"])) == python
    assert await pool.fetchrow(BALANCE, hash_key("unknown")) is None


async def test_load_service_sql_is_the_twin_of_the_service_row(
    ctx: AppContext, make_service: MakeService
) -> None:
    sid = await make_service(rate=D("1.23456789"), step=10, link_pattern=r"^https://")
    pool = await ctx.db.driver()
    row = await pool.fetchrow(LOAD_SERVICE, sid)
    assert row is not None
    async with ctx.db.session() as session:
        service = await session.get(Service, sid)
        version = await session.scalar(
            text("SELECT xmin::text FROM services WHERE id = :i"), {"i": sid}
        )
    assert service is not None
    columns = Service.__table__.columns.keys()
    assert {c: row[c] for c in columns} == {c: getattr(service, c) for c in columns}
    assert row["row_version"] == version
    # Any change gives the row another version: the add statement then refuses the copy.
    async with ctx.db.transaction() as session:
        await session.execute(update(Service).where(Service.id == sid).values(min_quantity=60))
    changed = await pool.fetchrow(LOAD_SERVICE, sid)
    assert changed is not None and changed["row_version"] != version
    assert await pool.fetchrow(LOAD_SERVICE, sid + 1000) is None


async def test_refill_statuses_sql_is_the_twin_of_get_own_refills(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    owner, stranger = await make_user(), await make_user()
    sid = await make_service()
    made: list[int] = []
    async with ctx.db.transaction() as session:
        for n, who in enumerate((owner, owner, stranger)):
            order = Order(
                user_id=who.user_id,
                service_id=sid,
                type="Default",
                link=f"https://x.com/r{n}",
                link_normalized=f"x.com/r{n}",
                quantity=100,
                rate=D("0.9"),
                charge=D("0.09"),
                status=COMPLETED,
                upstream_state=UP_MANUAL,
                finished_at=utcnow(),
            )
            session.add(order)
            await session.flush()
            made.append((await refills.request_refill(session, who.user_id, order.id)).id)
        await session.execute(update(Refill).where(Refill.id == made[1]).values(status=COMPLETED))
    asked = [*made, made[0] + 1000]
    pool = await ctx.db.driver()
    rows = await pool.fetch(REFILL_STATUSES, hash_key(owner.key), asked)
    in_sql = {r["refill_id"]: r["status"] for r in rows if r["refill_id"] is not None}
    async with ctx.db.session() as session:
        python = await refills.get_own_refills(session, owner.user_id, asked)
    assert in_sql == {i: r.status for i, r in python.items()}
    assert set(in_sql) == set(made[:2])
    # A refused key: no row at all (the full path refuses it).
    assert await pool.fetch(REFILL_STATUSES, hash_key("unknown"), asked) == []


async def test_catalog_pricing_sql_is_the_twin_of_what_services_is_keyed_by(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    plain, discounted, custom = await make_user(), await make_user(), await make_user()
    sid = await make_service()
    async with ctx.db.transaction() as session:
        await session.execute(
            update(User).where(User.id == discounted.user_id).values(discount_percent=D("12.5"))
        )
        session.add(UserRate(user_id=custom.user_id, service_id=sid, rate=D("0.5")))
    pool = await ctx.db.driver()
    for user in (plain, discounted, custom):
        async with ctx.db.session() as session:
            who = await accounts.authenticate(session, user.key)
            discount = await session.scalar(
                select(User.discount_percent).where(User.id == who.user_id)
            )
            rates = await session.scalar(
                select(func.count(UserRate.service_id)).where(UserRate.user_id == who.user_id)
            )
            version = (await session.get(CatalogVersion, 1) or CatalogVersion(version=0)).version
            shown = (await session.execute(text(USER_PRICING), {"user_id": who.user_id})).one()
        row = await pool.fetchrow(CATALOG_PRICING, hash_key(user.key))
        assert row is not None
        python = (who.user_id, discount, version, bool(rates))
        assert (row["user_id"], row["discount_percent"], row["version"], row["custom"]) == python
        assert (shown[0], shown[1]) == (discount, bool(rates))
        assert await pool.fetchval(CATALOG_VERSION) == version
    assert await pool.fetchrow(CATALOG_PRICING, hash_key("unknown")) is None
    # A change to the catalog moves the version both read.
    before = await pool.fetchval(CATALOG_VERSION)
    async with ctx.db.transaction() as session:
        await session.execute(update(Service).where(Service.id == sid).values(name="Renamed"))
    assert await pool.fetchval(CATALOG_VERSION) > before


async def test_posts_sql_is_the_twin_of_what_status_shows(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    """A subscription shows the posts its provider reported; no other order keeps any."""
    user = await make_user()
    sid = await make_service()
    async with ctx.db.transaction() as session:
        made = [
            Order(
                user_id=user.user_id,
                service_id=sid,
                type=kind,
                link=f"https://x.com/{kind}",
                link_normalized=f"x.com/{kind}",
                quantity=1000,
                params={"username": "u"},
                rate=D("1"),
                charge=D("1"),
                upstream_state=UP_SENT,
            )
            for kind in (SUBSCRIPTIONS, "Default")
        ]
        session.add_all(made)
        await session.flush()
        await session.execute(POSTS_SQL, {"ids": [o.id for o in made], "posts": [7, 7]})
    async with ctx.db.session() as session:
        subscription, default = [await session.get(Order, o.id) for o in made]
    assert subscription is not None and default is not None
    assert order_status(subscription, "USD")["posts"] == "7"
    assert default.params == {"username": "u"} and "posts" not in order_status(default, "USD")


async def _margin_rows(ctx: AppContext, user: Reseller, sid: int, provider_id: int) -> list[int]:
    """Orders of every kind a margin report meets, with their ledger movements."""
    cases = [
        # status, provider charge, fx rate, remains, refund
        (COMPLETED, D("0.4"), D("1"), 0, None),
        (PARTIAL, D("0.4"), D("1.1"), 25, D("0.25")),
        (CANCELED, D("0.4"), D("1"), 100, D("1")),
        (COMPLETED, None, None, 0, None),  # unpriced
        (COMPLETED, D("0.4"), D("1"), 0, None),  # a drip-feed run: no order of its own
    ]
    ids: list[int] = []
    async with ctx.db.transaction() as session:
        for n, (status, cost, fx, remains, refund) in enumerate(cases):
            order = Order(
                user_id=user.user_id,
                service_id=sid,
                parent_id=ids[0] if n == 4 else None,
                type="Default",
                link=f"https://x.com/m{n}",
                link_normalized=f"x.com/m{n}",
                quantity=100,
                rate=D("10"),
                charge=D("1"),
                status=status,
                remains=remains,
                upstream_state=UP_SENT,
                provider_id=provider_id,
                provider_order_id=str(n),
                provider_charge=cost,
                fx_rate=fx,
            )
            session.add(order)
            await session.flush()
            ids.append(order.id)
            await ledger.debit(
                session,
                user_id=user.user_id,
                amount=D("1"),
                kind=CHARGE,
                reason=f"Order {order.id}",
                order_id=order.id,
            )
            if refund is not None:
                await ledger.credit(
                    session,
                    user_id=user.user_id,
                    amount=refund,
                    kind=REFUND,
                    reason=f"Order {order.id}: refund",
                    order_id=order.id,
                )
    return ids


async def test_margin_statements_are_the_twins_of_the_report_rules(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    """Revenue (charges less refunds), orders (no drip-feed runs), provider cost
    (`order_cost` at each order's rate) and the groups' names, per service, from the
    statements and from the rows one by one."""
    user = await make_user("100")
    async with ctx.db.transaction() as session:
        provider = Provider(name="P", url="http://127.0.0.1:9/api/v2", api_key_encrypted="x")
        session.add(provider)
        await session.flush()
        provider_id = provider.id
    sid = await make_service(name="Margin")
    ids = await _margin_rows(ctx, user, sid, provider_id)
    start, end = utcnow() - timedelta(hours=1), utcnow() + timedelta(hours=1)
    window = {"start": start, "end": end}
    key, names_sql = GROUPS["service"]
    async with ctx.db.session() as session:
        revenue: dict[int, Decimal] = dict(
            (await session.execute(text(REVENUE.format(key=key)), window)).all()
        )
        counted: dict[int, int] = dict(
            (await session.execute(text(ORDERS.format(key=key)), window)).all()
        )
        cost_rows = (await session.execute(text(COST.format(key=key)), window)).all()
        names: dict[int, str] = dict(
            (await session.execute(text(names_sql), {"keys": [sid]})).all()
        )
        orders = [o for o in await session.scalars(select(Order).where(Order.id.in_(ids)))]
        entries = list(
            await session.scalars(select(LedgerEntry).where(LedgerEntry.order_id.in_(ids)))
        )
    moved = [e.amount for e in entries if e.kind in (CHARGE, REFUND)]
    assert revenue[sid] == -sum(moved)
    assert counted[sid] == sum(1 for o in orders if o.parent_id is None)
    not_priced = [
        o
        for o in orders
        if unpriced(o.upstream_state, o.status, o.provider_order_id, o.provider_charge, o.fx_rate)
    ]
    priced = [o for o in orders if o not in not_priced and o.provider_order_id is not None]
    python_cost = sum(
        order_cost(o.status, o.provider_charge or D(0), o.quantity, o.remains) * (o.fx_rate or 0)
        for o in priced
    )
    (group, cost, unpriced_count, unpriced_revenue), *_ = [r for r in cost_rows if r[0] == sid]
    assert group == sid and unpriced_count == len(not_priced)
    assert (unpriced_revenue or D(0)) == sum((o.charge - o.refunded for o in not_priced), D(0))
    assert cost.quantize(D("0.00000001")) == D(python_cost).quantize(D("0.00000001"))
    assert names == {sid: "Margin"}
