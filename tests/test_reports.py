"""Multi-currency providers and the margin report, checked against hand-computed figures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.context import AppContext
from app.db import utcnow
from app.orders.models import Order
from app.providers.service import create_provider
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok
from tests.support.upstream import run_jobs, sandbox, upstream_states


@pytest.fixture
async def providers(ctx: AppContext, settings: Settings) -> AsyncIterator[dict[str, int]]:
    config = SandboxConfig(
        services=[SandboxService(1, "Followers", rate=Decimal("0.40"), min=10, max=100_000)],
        seconds_to_start=3600,
        seconds_to_complete=3600,
    )
    async with sandbox(config) as (url, _):
        async with ctx.db.transaction() as session:
            usd = await create_provider(
                session,
                secret=settings.secret_key,
                name="Dollar panel",
                url=f"{url}/api/v2",
                api_key="sandbox-key",
            )
            rub = await create_provider(
                session,
                secret=settings.secret_key,
                name="Ruble panel",
                url=f"{url}/api/v2",
                api_key="sandbox-key",
            )
            rub.currency = "RUB"
        yield {"usd": usd.id, "rub": rub.id}


async def set_status(client: httpx.AsyncClient, order_id: int, **body: Any) -> None:
    response = await client.post(f"/admin/v1/orders/{order_id}/status", headers=AUTH, json=body)
    assert response.status_code == 200, response.text


async def report(client: httpx.AsyncClient, group_by: str) -> dict[str, Any]:
    today = utcnow().date().isoformat()
    response = await client.get(
        "/admin/v1/reports/margin",
        headers=AUTH,
        params={"from": today, "to": today, "group_by": group_by},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_margin_report_matches_hand_computed_figures(
    api: Api,
    client: httpx.AsyncClient,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    providers: dict[str, int],
) -> None:
    # 1 RUB = 0.011 USD on the day the ruble orders are sent.
    put = await client.put("/admin/v1/currencies/rub", headers=AUTH, json={"rate": "0.011"})
    assert put.status_code == 200, put.text
    followers = await make_service(
        name="Followers",
        rate=Decimal("0.90"),
        min_quantity=10,
        provider_id=providers["usd"],
        provider_service_id="1",
        provider_rate=Decimal("0.40"),
    )
    likes = await make_service(
        name="Likes",
        rate=Decimal("2.00"),
        min_quantity=10,
        provider_id=providers["rub"],
        provider_service_id="1",
        provider_rate=Decimal("50"),
    )
    user = await make_user(balance="100")
    orders: list[int] = []
    for n, (service, quantity) in enumerate(
        [(followers, 1000), (followers, 500), (followers, 200), (likes, 1000), (followers, 100)]
    ):
        result = await api(
            user.key, "add", service=service, link=f"https://x.com/{n}", quantity=quantity
        )
        orders.append(order_id_of(result))
    assert await run_jobs(settings, ctx) >= 1
    assert await upstream_states(ctx) == ["sent"] * 5
    await set_status(client, orders[0], status="Completed", remains=0)
    # refund 100 × 0.45 / 500 = 0.09
    await set_status(client, orders[1], status="Partial", remains=100)
    await set_status(client, orders[2], status="Canceled")  # full refund 0.18, costs nothing
    # The fifth order was placed last month: outside the range.
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Order)
            .where(Order.id == orders[4])
            .values(created_at=utcnow() - timedelta(days=40))
        )
    # A later change of the rate does not reprice orders already sent.
    await client.put("/admin/v1/currencies/RUB", headers=AUTH, json={"rate": "0.02"})

    by_service = await report(client, "service")
    rows = {row["name"]: row for row in by_service["rows"]}
    # Followers: revenue 0.90 + (0.45 − 0.09) + (0.18 − 0.18) = 1.26
    #            cost 0.40 + 0.20 × 400/500 + 0 = 0.56 → margin 0.70, 55.56 %
    assert Decimal(rows["Followers"]["revenue"]) == Decimal("1.26")
    assert Decimal(rows["Followers"]["cost"]) == Decimal("0.56")
    assert Decimal(rows["Followers"]["margin"]) == Decimal("0.70")
    assert rows["Followers"]["margin_percent"] == "55.56"
    assert rows["Followers"]["orders"] == 3
    # Likes: revenue 2.00, cost 50 RUB × 0.011 = 0.55 USD → margin 1.45, 72.50 %
    assert Decimal(rows["Likes"]["revenue"]) == Decimal("2.00")
    assert Decimal(rows["Likes"]["cost"]) == Decimal("0.55")
    assert Decimal(rows["Likes"]["margin"]) == Decimal("1.45")
    assert rows["Likes"]["margin_percent"] == "72.50"
    total = by_service["total"]
    assert (Decimal(total["revenue"]), Decimal(total["cost"]), Decimal(total["margin"])) == (
        Decimal("3.26"),
        Decimal("1.11"),
        Decimal("2.15"),
    )
    assert total["orders"] == 4 and total["unpriced_orders"] == 0

    by_provider = await report(client, "provider")
    prow = {row["name"]: row for row in by_provider["rows"]}
    assert Decimal(prow["Dollar panel"]["cost"]) == Decimal("0.56")
    assert Decimal(prow["Ruble panel"]["cost"]) == Decimal("0.55")
    await ledger_ok(ctx)


async def test_orders_to_a_provider_without_a_rate_are_reported_unpriced(
    api: Api,
    client: httpx.AsyncClient,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    providers: dict[str, int],
) -> None:
    likes = await make_service(
        name="Likes",
        rate=Decimal("2.00"),
        min_quantity=10,
        provider_id=providers["rub"],
        provider_service_id="1",
        provider_rate=Decimal("50"),
    )
    user = await make_user(balance="10")
    await api(user.key, "add", service=likes, link="https://x.com/a", quantity=1000)
    assert await run_jobs(settings, ctx) >= 1
    assert await upstream_states(ctx) == ["sent"]
    body = await report(client, "service")
    assert body["rows"][0]["unpriced_orders"] == 1
    assert Decimal(body["rows"][0]["cost"]) == 0
    assert Decimal(body["rows"][0]["revenue"]) == Decimal("2.00")


async def test_currency_rates_from_settings_and_admin(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/admin/v1/currencies", headers=AUTH)).json()
    assert listed == [{"code": "USD", "rate": "1", "source": "panel"}]
    assert (
        await client.put("/admin/v1/currencies/USD", headers=AUTH, json={"rate": "2"})
    ).status_code == 409
    bad = await client.put("/admin/v1/currencies/EUR", headers=AUTH, json={"rate": "0"})
    assert bad.status_code == 422
    await client.put("/admin/v1/currencies/eur", headers=AUTH, json={"rate": "1.08"})
    listed = (await client.get("/admin/v1/currencies", headers=AUTH)).json()
    assert {"code": "EUR", "rate": "1.08000000", "source": "admin"} in listed
    assert (await client.delete("/admin/v1/currencies/EUR", headers=AUTH)).status_code == 204
    assert (await client.delete("/admin/v1/currencies/EUR", headers=AUTH)).status_code == 404


async def test_margin_report_rejects_bad_ranges(client: httpx.AsyncClient) -> None:
    for params in (
        {"from": "2026-02-01", "to": "2026-01-01"},
        {"from": "2026-01-01", "to": "9999-12-31"},
        {"from": "nope", "to": "2026-01-01"},
        {"from": "2026-01-01", "to": "2026-01-02", "group_by": "user"},
    ):
        response = await client.get("/admin/v1/reports/margin", headers=AUTH, params=params)
        assert response.status_code == 422, (params, response.text)


async def test_an_order_marked_sent_from_review_is_priced(
    api: Api,
    client: httpx.AsyncClient,
    ctx: AppContext,
    make_user: MakeUser,
    make_service: MakeService,
    providers: dict[str, int],
) -> None:
    service = await make_service(
        rate=Decimal("0.90"),
        min_quantity=10,
        provider_id=providers["usd"],
        provider_service_id="1",
        provider_rate=Decimal("0.40"),
    )
    user = await make_user(balance="10")
    order_id = order_id_of(
        await api(user.key, "add", service=service, link="https://x.com/r", quantity=500)
    )
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Order).where(Order.id == order_id).values(upstream_state="review")
        )
    response = await client.post(
        f"/admin/v1/review/{order_id}/mark-sent", headers=AUTH, json={"provider_order_id": "55"}
    )
    assert response.status_code == 200, response.text
    async with ctx.db.session() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        assert (order.provider_charge, order.provider_currency, order.fx_rate) == (
            Decimal("0.2"),
            "USD",
            Decimal("1"),
        )


COST_CASES = [
    # status, provider_charge, quantity, remains
    ("Completed", Decimal("0.40000"), 1000, 0),
    ("Completed", Decimal("0.40000"), 1000, None),
    ("In progress", Decimal("1.23456789"), 777, 300),
    ("Pending", Decimal("0.00000001"), 1, None),
    ("Partial", Decimal("0.40000"), 1000, 250),
    ("Partial", Decimal("0.33333333"), 3, 1),
    ("Partial", Decimal("7.00000000"), 9, None),
    ("Partial", Decimal("1.00000000"), 1000, 1000),
    ("Canceled", Decimal("0.40000"), 1000, 1000),
    ("Canceled", Decimal("5.00000000"), 10, 0),
]


async def test_cost_sql_is_the_twin_of_order_cost(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    """The margin report's per-order cost in SQL equals `order_cost` on the same rows."""
    from sqlalchemy import text

    from app.reports.service import order_cost
    from app.reports.sql import COST_EXPR

    user = await make_user()
    sid = await make_service()
    async with ctx.db.transaction() as session:
        ids = []
        for n, (status, charge, quantity, remains) in enumerate(COST_CASES):
            order = Order(
                user_id=user.user_id,
                service_id=sid,
                type="Default",
                link=f"https://x.com/cost/{n}",
                link_normalized=f"x.com/cost/{n}",
                quantity=quantity,
                rate=Decimal("1"),
                charge=Decimal("1"),
                status=status,
                upstream_state="sent",
                remains=remains,
                provider_charge=charge,
                provider_order_id=str(n),
            )
            session.add(order)
            await session.flush()
            ids.append(order.id)
        rows = await session.execute(
            text(f"SELECT o.id, {COST_EXPR} AS cost FROM orders o WHERE o.id = ANY(:ids)"),
            {"ids": ids},
        )
        in_sql = {row.id: Decimal(row.cost) for row in rows}
    eight = Decimal("0.00000001")
    for order_id, (status, charge, quantity, remains) in zip(ids, COST_CASES, strict=True):
        expected = order_cost(status, charge, quantity, remains)
        assert in_sql[order_id].quantize(eight) == expected.quantize(eight), (status, remains)


async def test_orders_not_yet_accepted_upstream_are_unpriced_not_free(
    api: Api,
    client: httpx.AsyncClient,
    ctx: AppContext,
    settings: Settings,
    make_user: MakeUser,
    make_service: MakeService,
    providers: dict[str, int],
) -> None:
    """An order still waiting to be sent (or in review) has no cost yet: it is counted in
    `unpriced_orders` with its revenue apart, and the margin is that of the priced orders
    only, never its revenue as a 100 % margin."""
    followers = await make_service(
        name="Followers",
        rate=Decimal("0.90"),
        min_quantity=10,
        provider_id=providers["usd"],
        provider_service_id="1",
        provider_rate=Decimal("0.40"),
    )
    user = await make_user(balance="10")
    sent = order_id_of(
        await api(user.key, "add", service=followers, link="https://x.com/s", quantity=1000)
    )
    assert await run_jobs(settings, ctx) >= 1
    waiting = order_id_of(
        await api(user.key, "add", service=followers, link="https://x.com/w", quantity=1000)
    )
    reviewed = order_id_of(
        await api(user.key, "add", service=followers, link="https://x.com/r", quantity=500)
    )
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Order).where(Order.id == reviewed).values(upstream_state="review")
        )
    # Withdrawn before it was sent: refunded whole, it costs nothing and is priced at 0.
    withdrawn = order_id_of(
        await api(user.key, "add", service=followers, link="https://x.com/c", quantity=100)
    )
    assert await api(user.key, "cancel", order=withdrawn) == [{"order": withdrawn, "cancel": 1}]
    states = {
        o: s
        for o, s in zip(
            [sent, waiting, reviewed, withdrawn], await upstream_states(ctx), strict=True
        )
    }
    assert states == {sent: "sent", waiting: "queued", reviewed: "review", withdrawn: "withdrawn"}

    (row,) = (await report(client, "service"))["rows"]
    assert (row["orders"], row["unpriced_orders"]) == (4, 2)
    # Revenue 0.90 + 0.90 + 0.45 (+ 0.09 − 0.09); the unsent 0.90 + 0.45 are apart.
    assert (Decimal(row["revenue"]), Decimal(row["unpriced_revenue"])) == (
        Decimal("2.25"),
        Decimal("1.35"),
    )
    # Priced: revenue 0.90, cost 0.40 → margin 0.50, 55.56 %.
    assert (Decimal(row["cost"]), Decimal(row["margin"]), row["margin_percent"]) == (
        Decimal("0.40"),
        Decimal("0.50"),
        "55.56",
    )
    await ledger_ok(ctx)


UNPRICED_CASES = [
    # upstream_state, status, provider_order_id, provider_charge, fx_rate
    ("queued", "Pending", None, None, None),
    ("sending", "Pending", None, None, None),
    ("review", "Pending", None, None, None),
    ("queued", "Canceled", None, None, None),
    ("withdrawn", "Canceled", None, None, None),
    ("rejected", "Canceled", None, None, None),
    ("manual", "Pending", None, None, None),
    ("dripfeed", "In progress", None, None, None),
    ("sent", "In progress", "7", Decimal("0.4"), Decimal("1")),
    ("sent", "Completed", "8", None, Decimal("1")),
    ("sent", "Partial", "9", Decimal("0.4"), None),
]


async def test_unpriced_sql_is_the_twin_of_unpriced(
    ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    """Which orders the margin report cannot cost: UNPRICED_EXPR in SQL equals `unpriced`
    on the same rows."""
    from sqlalchemy import text

    from app.reports.service import unpriced
    from app.reports.sql import UNPRICED_EXPR

    user = await make_user()
    sid = await make_service()
    async with ctx.db.transaction() as session:
        ids = []
        for n, (state, status, provider_order_id, charge, fx) in enumerate(UNPRICED_CASES):
            order = Order(
                user_id=user.user_id,
                service_id=sid,
                type="Default",
                link=f"https://x.com/unpriced/{n}",
                link_normalized=f"x.com/unpriced/{n}",
                quantity=100,
                rate=Decimal("1"),
                charge=Decimal("0.1"),
                status=status,
                upstream_state=state,
                provider_order_id=provider_order_id,
                provider_charge=charge,
                fx_rate=fx,
            )
            session.add(order)
            await session.flush()
            ids.append(order.id)
        rows = await session.execute(
            text(f"SELECT o.id, {UNPRICED_EXPR} AS unpriced FROM orders o WHERE o.id = ANY(:ids)"),
            {"ids": ids},
        )
        in_sql = {row.id: row.unpriced for row in rows}
    expected = [unpriced(*case) for case in UNPRICED_CASES]
    assert [in_sql[i] for i in ids] == expected
    assert expected == [True, True, True, False, False, False, False, False, False, True, True]
