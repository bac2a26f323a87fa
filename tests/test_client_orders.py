"""Ordering, money and privacy from the customer's own account (/client/v1): the rules of
API v2 `add` below, a mass order that never spends more than the balance, an exact order
history, transactions, deposits, referrals, export and deletion requests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from app.accounts.models import User
from app.context import AppContext
from app.db import utcnow
from app.ledger.models import LedgerEntry
from app.orders.models import Order
from app.privacy.models import DeletionRequest
from app.providers.models import Provider
from tests.support.api import MakeService
from tests.support.client import Customer, MakeCustomer
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok


async def balance_of(ctx: AppContext, user_id: int) -> Decimal:
    async with ctx.db.session() as session:
        value = await session.scalar(select(User.balance).where(User.id == user_id))
    assert value is not None
    return value


async def order(client: httpx.AsyncClient, who: Customer, **fields: Any) -> httpx.Response:
    return await client.post(
        "/client/v1/orders", headers=who.auth, json={k: str(v) for k, v in fields.items()}
    )


async def test_mass_order_places_what_the_balance_covers_in_line_order(
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
    ctx: AppContext,
) -> None:
    customer = await make_customer("20")
    service = await make_service(rate=Decimal("1.00"), min_quantity=100, max_quantity=10000)
    lines: list[str] = []
    expected: list[dict[str, Any]] = []
    funds = Decimal("20")
    for n in range(1, 301):
        if n % 7 == 0:
            lines.append(f"{service}|not a link|1000")
            expected.append({"line": n, "error": "Incorrect link"})
        elif n % 11 == 0:
            lines.append(f"{service}|https://x.com/p{n}|10")
            expected.append({"line": n, "error": "Quantity less than minimal 100"})
        elif n % 13 == 0:
            lines.append(f"999999999|https://x.com/p{n}|1000")
            expected.append({"line": n, "error": "Incorrect service ID"})
        elif n % 17 == 0:
            lines.append(f"{service}|https://x.com/p{n}")
            expected.append({"line": n, "error": "Incorrect line: use service_id|link|quantity"})
        elif n % 19 == 0:
            lines.append(f"{service}|https://x.com/p{n - 1}|500")  # the line above's link
            dup = expected[-1].get("order") is not None
            if dup:
                expected.append(
                    {
                        "line": n,
                        "error": "You have active order with this link. Please wait until order being completed.",
                    }
                )
            else:
                # The line above was refused, so its link is free: a valid 0.50 line.
                if funds >= Decimal("0.5"):
                    funds -= Decimal("0.5")
                    expected.append({"line": n, "order": True})
                else:
                    expected.append({"line": n, "error": "Not enough funds on balance"})
        else:
            quantity = 1500 if n % 2 else 1000
            cost = Decimal(quantity) / 1000
            lines.append(f"{service}|https://x.com/p{n}|{quantity}")
            if funds >= cost:
                funds -= cost
                expected.append({"line": n, "order": True})
            else:
                expected.append({"line": n, "error": "Not enough funds on balance"})

    response = await client.post(
        "/client/v1/orders/mass", headers=customer.auth, json={"lines": "\n".join(lines)}
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 300
    got = [
        {"line": r["line"], "order": True}
        if r["order"]
        else {"line": r["line"], "error": r["error"]}
        for r in results
    ]
    assert got == expected
    placed = [r["order"] for r in results if r["order"]]
    assert placed == sorted(placed)  # placed in line order
    assert any(e.get("error") == "Not enough funds on balance" for e in expected)
    # Exactly what the balance covers was spent, never more.
    spent = Decimal("20") - funds
    assert await balance_of(ctx, customer.user_id) == funds
    async with ctx.db.session() as session:
        charges = list(
            await session.scalars(
                select(LedgerEntry.amount)
                .where(LedgerEntry.user_id == customer.user_id, LedgerEntry.kind == "charge")
                .order_by(LedgerEntry.id)
            )
        )
        total = sum(
            await session.scalars(select(Order.charge).where(Order.user_id == customer.user_id))
        )
    assert len(charges) == len(placed)
    assert -sum(charges) == spent
    assert total == spent
    await ledger_ok(ctx)


async def test_mass_order_limits_and_blank_lines(
    client: httpx.AsyncClient, make_customer: MakeCustomer, make_service: MakeService
) -> None:
    customer = await make_customer("5")
    service = await make_service(rate=Decimal("1.00"), min_quantity=100)
    too_many = "\n".join(f"{service}|https://x.com/{n}|100" for n in range(501))
    refused = await client.post(
        "/client/v1/orders/mass", headers=customer.auth, json={"lines": too_many}
    )
    assert refused.status_code == 422
    assert refused.json()["detail"] == "Too many lines (at most 500)"
    spaced = f"\n{service}|https://x.com/a|100\n\n  \n{service} | https://x.com/b | 100\n"
    done = await client.post(
        "/client/v1/orders/mass", headers=customer.auth, json={"lines": spaced}
    )
    assert [r["line"] for r in done.json()["results"]] == [2, 5]
    assert all(r["order"] for r in done.json()["results"])


async def test_order_errors_are_problems_with_the_api_v2_message(
    client: httpx.AsyncClient, make_customer: MakeCustomer, make_service: MakeService
) -> None:
    customer = await make_customer("0.5")
    service = await make_service(rate=Decimal("1.00"), min_quantity=100)
    poor = await order(client, customer, service=service, link="https://x.com/a", quantity=1000)
    assert poor.status_code == 409
    assert poor.json() == {
        "type": "/errors/insufficient-funds",
        "title": "Conflict",
        "status": 409,
        "detail": "Not enough funds on balance",
    }
    bad = await order(client, customer, service=service, link="nope", quantity=100)
    assert (bad.status_code, bad.json()["type"], bad.json()["detail"]) == (
        422,
        "/errors/incorrect-link",
        "Incorrect link",
    )
    ok = await order(client, customer, service=service, link="https://x.com/a", quantity=100)
    assert ok.status_code == 201, ok.text
    dup = await order(client, customer, service=service, link="https://x.com/a", quantity=100)
    assert dup.json()["type"] == "/errors/duplicate-active-order"
    unsigned = await client.post("/client/v1/orders", json={"service": str(service)})
    assert unsigned.status_code == 401


async def test_order_history_filters_and_cursor_pages_are_exact(
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
    ctx: AppContext,
) -> None:
    customer = await make_customer("100")
    other = await make_customer("100")
    likes = await make_service(rate=Decimal("1.00"), min_quantity=10)
    views = await make_service(rate=Decimal("2.00"), min_quantity=10, name="Views")
    ids: list[int] = []
    for n in range(10):
        service = likes if n % 2 == 0 else views
        link = f"https://insta.com/Post{n}" if n < 5 else f"https://tube.com/v{n}"
        made = await order(client, customer, service=service, link=link, quantity=100)
        ids.append(made.json()["order"])
    # Someone else's order never shows.
    await order(client, other, service=likes, link="https://insta.com/Post0", quantity=100)
    for oid in ids[:3]:
        canceled = await client.post(f"/client/v1/orders/{oid}/cancel", headers=customer.auth)
        assert canceled.json() == {"cancel": 1}
    day = datetime(2026, 3, 1, tzinfo=UTC)
    async with ctx.db.transaction() as session:
        for index, oid in enumerate(ids):
            await session.execute(
                update(Order).where(Order.id == oid).values(created_at=day + timedelta(days=index))
            )

    async def listing(**params: Any) -> list[int]:
        seen: list[int] = []
        cursor = None
        while True:
            query = {**params, "limit": 3, **({"cursor": cursor} if cursor else {})}
            page = await client.get("/client/v1/orders", headers=customer.auth, params=query)
            assert page.status_code == 200, page.text
            body = page.json()
            seen += [o["id"] for o in body["orders"]]
            assert len(body["orders"]) <= 3
            cursor = body["next_cursor"]
            if cursor is None:
                return seen

    newest_first = list(reversed(ids))
    assert await listing() == newest_first
    assert await listing(status="Canceled") == list(reversed(ids[:3]))
    assert await listing(status="Pending") == list(reversed(ids[3:]))
    assert await listing(service=views) == [i for i in newest_first if ids.index(i) % 2 == 1]
    assert await listing(link="insta.com/post") == list(reversed(ids[:5]))  # any case
    assert await listing(link="%") == []  # a literal, not a pattern
    assert await listing(**{"from": "2026-03-03T00:00:00Z", "to": "2026-03-06T00:00:00Z"}) == [
        ids[4],
        ids[3],
        ids[2],
    ]
    wrong = await client.get("/client/v1/orders", headers=customer.auth, params={"status": "Nope"})
    assert wrong.status_code == 422
    first = (
        await client.get("/client/v1/orders", headers=customer.auth, params={"limit": 1})
    ).json()
    assert first["orders"][0] == {
        "id": ids[-1],
        "service_id": views,
        "type": "Default",
        "link": "https://tube.com/v9",
        "quantity": 100,
        "charge": "0.20000",
        "refunded": "0.00000",
        "status": "Pending",
        "start_count": None,
        "remains": None,
        "runs": None,
        "interval": None,
        "created_at": "2026-03-10T00:00:00Z",
        "updated_at": first["orders"][0]["updated_at"],
    }
    canceled_one = (await client.get(f"/client/v1/orders/{ids[0]}", headers=customer.auth)).json()
    assert (canceled_one["status"], canceled_one["refunded"]) == ("Canceled", "0.10000")
    foreign = await client.get(f"/client/v1/orders/{ids[0]}", headers=other.auth)
    assert foreign.status_code == 422
    assert foreign.json()["detail"] == "Incorrect order ID"
    await ledger_ok(ctx)


async def test_order_detail_shows_refills(
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
    ctx: AppContext,
) -> None:
    customer = await make_customer("10")
    service = await make_service(rate=Decimal("1.00"), min_quantity=10)
    oid = (
        await order(client, customer, service=service, link="https://x.com/a", quantity=100)
    ).json()["order"]
    early = await client.post(f"/client/v1/orders/{oid}/refill", headers=customer.auth)
    assert early.status_code == 422
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Order)
            .where(Order.id == oid)
            .values(status="Completed", remains=0, finished_at=utcnow())
        )
    made = await client.post(f"/client/v1/orders/{oid}/refill", headers=customer.auth)
    assert made.status_code == 200, made.text
    detail = (await client.get(f"/client/v1/orders/{oid}", headers=customer.auth)).json()
    assert [r["id"] for r in detail["refills"]] == [made.json()["refill"]]
    assert detail["drip_feed_runs"] == []
    assert detail["status"] == "Completed"


async def test_services_show_the_rate_the_user_pays_and_the_fields(
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
    ctx: AppContext,
) -> None:
    customer = await make_customer()
    service = await make_service(rate=Decimal("2.00"), description="Real followers", dripfeed=True)
    await make_service(type="Poll", name="Votes", enabled=False)
    async with ctx.db.transaction() as session:
        await session.execute(
            update(User).where(User.id == customer.user_id).values(discount_percent=Decimal("10"))
        )
    shown = (await client.get("/client/v1/services", headers=customer.auth)).json()
    assert shown == [
        {
            "service": service,
            "name": "Followers",
            "type": "Default",
            "category": "First Category",
            "rate": "1.80",
            "min": 50,
            "max": 10000,
            "refill": True,
            "cancel": True,
            "dripfeed": True,
            "description": "Real followers",
            "fields": ["link", "quantity", "runs?", "interval?"],
        }
    ]


async def test_transactions_pages(
    client: httpx.AsyncClient, make_customer: MakeCustomer, make_service: MakeService
) -> None:
    customer = await make_customer("10")
    service = await make_service(rate=Decimal("1.00"), min_quantity=10)
    for n in range(4):
        await order(client, customer, service=service, link=f"https://x.com/{n}", quantity=100)
    first = (
        await client.get("/client/v1/transactions", headers=customer.auth, params={"limit": 3})
    ).json()
    assert [t["kind"] for t in first["transactions"]] == ["charge"] * 3
    assert first["transactions"][0]["amount"] == "-0.10000"
    assert first["transactions"][0]["balance_after"] == "9.60000"
    rest = (
        await client.get(
            "/client/v1/transactions",
            headers=customer.auth,
            params={"limit": 3, "cursor": first["next_cursor"]},
        )
    ).json()
    assert [t["kind"] for t in rest["transactions"]] == ["charge", "deposit"]
    assert rest["transactions"][-1]["amount"] == "10.00000"
    assert rest["next_cursor"] is None


@pytest.fixture
def robokassa(ctx: AppContext) -> Iterator[None]:
    s = ctx.settings
    saved = s.model_dump()
    s.robokassa_login, s.robokassa_password1, s.robokassa_password2 = "shop", "one", "two"
    s.currency_rates = {"RUB": Decimal("0.011")}
    yield
    for name, value in saved.items():
        setattr(s, name, value)


async def test_deposits_follow_the_invoice_rules(
    client: httpx.AsyncClient, make_customer: MakeCustomer, robokassa: None
) -> None:
    customer = await make_customer()
    made = await client.post(
        "/client/v1/deposits", headers=customer.auth, json={"gateway": "robokassa", "amount": "11"}
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert (body["amount"], body["currency"], body["credit"], body["status"]) == (
        "1000.00",
        "RUB",
        "11.00000",
        "pending",
    )
    assert body["pay_url"].startswith("https://auth.robokassa.ru/")
    small = await client.post(
        "/client/v1/deposits", headers=customer.auth, json={"gateway": "robokassa", "amount": "0.5"}
    )
    assert small.status_code == 422
    off = await client.post(
        "/client/v1/deposits", headers=customer.auth, json={"gateway": "freekassa", "amount": "5"}
    )
    assert off.status_code == 422
    listed = (await client.get("/client/v1/deposits", headers=customer.auth)).json()
    assert [d["payment"] for d in listed] == [body["payment"]]


async def test_referrals_show_code_link_and_signups(
    client: httpx.AsyncClient, make_customer: MakeCustomer, ctx: AppContext
) -> None:
    customer = await make_customer()
    mine = (await client.get("/client/v1/referrals", headers=customer.auth)).json()
    code = mine["code"]
    assert mine["link"] == f"{ctx.settings.public_url}/?ref={code}"
    assert (mine["signups"], mine["earnings"], mine["rewards"]) == (0, [], [])
    joined = await client.post(
        "/client/v1/register",
        json={
            "email": "friend@example.com",
            "password": "friend password",
            "referral_code": code,
            "accept_terms": True,
        },
    )
    assert joined.status_code == 201, joined.text
    after = (await client.get("/client/v1/referrals", headers=customer.auth)).json()
    assert after["signups"] == 1


async def test_export_and_a_deletion_request_with_its_deadline_completed_by_the_operator(
    client: httpx.AsyncClient, make_customer: MakeCustomer, ctx: AppContext
) -> None:
    customer = await make_customer("3")
    exported = await client.get("/client/v1/privacy/export", headers=customer.auth)
    admin_export = await client.get(f"/admin/v1/users/{customer.user_id}/export", headers=AUTH)
    assert exported.json() == admin_export.json()
    assert exported.json()["user"]["email"] == customer.email

    asked = await client.post("/client/v1/privacy/deletion", headers=customer.auth)
    assert asked.status_code == 202, asked.text
    request = asked.json()
    requested = datetime.fromisoformat(request["requested_at"])
    assert datetime.fromisoformat(request["deadline"]) == requested + timedelta(days=30)
    again = await client.post("/client/v1/privacy/deletion", headers=customer.auth)
    assert again.json()["id"] == request["id"]

    listed = (await client.get("/admin/v1/privacy/deletion-requests", headers=AUTH)).json()
    assert [(r["id"], r["user_id"], r["deadline"], r["overdue"]) for r in listed] == [
        (request["id"], customer.user_id, request["deadline"], False)
    ]
    async with ctx.db.transaction() as session:
        await session.execute(
            update(DeletionRequest)
            .where(DeletionRequest.id == request["id"])
            .values(deadline=utcnow() - timedelta(hours=1))
        )
    listed = (await client.get("/admin/v1/privacy/deletion-requests", headers=AUTH)).json()
    assert listed[0]["overdue"] is True
    metrics = (await client.get("/admin/v1/metrics", headers=AUTH)).text
    assert "smm_deletion_requests_overdue 1.0" in metrics

    done = await client.post(
        f"/admin/v1/privacy/deletion-requests/{request['id']}/complete", headers=AUTH
    )
    assert done.status_code == 200, done.text
    assert done.json()["request"]["completed_at"] is not None
    assert done.json()["erased"]["user_id"] == customer.user_id
    async with ctx.db.session() as session:
        user = await session.get(User, customer.user_id)
        assert user is not None
        assert (user.email, user.name, user.deleted_at is not None) == (None, None, True)
    # No way back in: the session and the password are gone.
    assert (await client.get("/client/v1/me", headers=customer.auth)).status_code == 401
    relogin = await client.post(
        "/client/v1/login", json={"email": customer.email, "password": customer.password}
    )
    assert relogin.status_code == 401
    assert (await client.get("/admin/v1/privacy/deletion-requests", headers=AUTH)).json() == []
    twice = await client.post(
        f"/admin/v1/privacy/deletion-requests/{request['id']}/complete", headers=AUTH
    )
    assert twice.status_code == 409
    metrics = (await client.get("/admin/v1/metrics", headers=AUTH)).text
    assert "smm_deletion_requests_overdue 0.0" in metrics


async def test_order_detail_shows_drip_feed_runs(
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
    ctx: AppContext,
) -> None:
    customer = await make_customer("10")
    async with ctx.db.transaction() as session:
        provider = Provider(name="P", url="http://127.0.0.1:9/api/v2", api_key_encrypted="x")
        session.add(provider)
        await session.flush()
        provider_id = provider.id
    service = await make_service(
        rate=Decimal("1.00"),
        min_quantity=10,
        dripfeed=True,
        provider_id=provider_id,
        provider_service_id="1",
        provider_dripfeed=False,
    )
    made = await order(
        client, customer, service=service, link="https://x.com/a", quantity=100, runs=3, interval=10
    )
    assert made.status_code == 201, made.text
    detail = (
        await client.get(f"/client/v1/orders/{made.json()['order']}", headers=customer.auth)
    ).json()
    assert (detail["runs"], detail["interval"], detail["charge"]) == (3, 10, "0.30000")
    runs = detail["drip_feed_runs"]
    assert [(r["quantity"], r["charge"], r["status"]) for r in runs] == [
        (100, "0.10000", "Pending")
    ] * 3
    # Runs are not orders of their own in the history.
    listed = (await client.get("/client/v1/orders", headers=customer.auth)).json()["orders"]
    assert [o["id"] for o in listed] == [made.json()["order"]]
