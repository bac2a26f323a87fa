"""The referral program and per-user discounts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from app.context import AppContext
from app.ledger.models import LedgerEntry
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/admin/v1/users", headers=AUTH, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def entries(ctx: AppContext, user_id: int) -> list[tuple[str, Decimal]]:
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(LedgerEntry.kind, LedgerEntry.amount)
            .where(LedgerEntry.user_id == user_id)
            .order_by(LedgerEntry.id)
        )
        return [(kind, amount) for kind, amount in rows]


async def test_referrer_earns_a_share_of_deposits_once(
    client: httpx.AsyncClient, ctx: AppContext, api: Api
) -> None:
    referrer = await create(client, email="ref@example.com")
    code = referrer["referral_code"]
    assert code and len(code) == 10
    referred = await create(
        client, email="new@example.com", referral_code=code.lower(), initial_balance="20"
    )
    assert referred["referred_by_id"] == referrer["id"]
    # 5 % of the initial 20.
    assert await entries(ctx, referrer["id"]) == [("referral", Decimal("1"))]
    topup = {"amount": "33.33333", "payment_ref": "bank-1"}
    await client.post(f"/admin/v1/users/{referred['id']}/topup", headers=AUTH, json=topup)
    # A replayed top-up credits nothing, so rewards nothing either.
    await client.post(f"/admin/v1/users/{referred['id']}/topup", headers=AUTH, json=topup)
    # 5 % of 33.33333 = 1.6666665, rounded down to 1.66666.
    assert await entries(ctx, referrer["id"]) == [
        ("referral", Decimal("1")),
        ("referral", Decimal("1.66666")),
    ]
    assert await api(referrer["api_key"], "balance") == {"balance": "2.66666", "currency": "USD"}
    # Adjustments are not deposits.
    await client.post(
        f"/admin/v1/users/{referred['id']}/adjust",
        headers=AUTH,
        json={"amount": "5", "reason": "x"},
    )
    rewards = (
        await client.get(
            "/admin/v1/referral-rewards", headers=AUTH, params={"referrer_id": referrer["id"]}
        )
    ).json()
    assert [(r["deposit_amount"], r["amount"], r["status"]) for r in rewards] == [
        ("33.33333000", "1.66666000", "credited"),
        ("20.00000000", "1.00000000", "credited"),
    ]
    await ledger_ok(ctx)


async def test_operator_voids_a_reward_once(
    client: httpx.AsyncClient, ctx: AppContext, api: Api
) -> None:
    referrer = await create(client, email="ref@example.com")
    referred = await create(
        client, email="n@example.com", referral_code=referrer["referral_code"], initial_balance="40"
    )
    (reward,) = (await client.get("/admin/v1/referral-rewards", headers=AUTH)).json()
    url = f"/admin/v1/referral-rewards/{reward['id']}/void"
    voided = await client.post(url, headers=AUTH, json={"reason": "chargeback"})
    assert voided.status_code == 200, voided.text
    assert voided.json()["status"] == "voided" and voided.json()["voided_by"] == "admin token"
    again = await client.post(url, headers=AUTH, json={"reason": "chargeback"})
    assert again.status_code == 409
    assert await entries(ctx, referrer["id"]) == [
        ("referral", Decimal("2")),
        ("adjustment", Decimal("-2")),
    ]
    assert await api(referrer["api_key"], "balance") == {"balance": "0.00000", "currency": "USD"}
    assert referred["referred_by_id"] == referrer["id"]
    await ledger_ok(ctx)


async def test_void_refused_when_the_reward_was_spent(
    client: httpx.AsyncClient, ctx: AppContext, make_service: MakeService, api: Api
) -> None:
    referrer = await create(client, email="ref@example.com")
    await create(
        client, email="n@example.com", referral_code=referrer["referral_code"], initial_balance="40"
    )
    service = await make_service(rate=Decimal("1.5"), min_quantity=1000)
    assert "order" in await api(
        referrer["api_key"], "add", service=service, link="https://x.com/a", quantity=1000
    )
    (reward,) = (await client.get("/admin/v1/referral-rewards", headers=AUTH)).json()
    response = await client.post(
        f"/admin/v1/referral-rewards/{reward['id']}/void", headers=AUTH, json={"reason": "x"}
    )
    assert response.status_code == 409
    assert response.json()["detail"] == "Not enough funds on balance"
    await ledger_ok(ctx)


async def test_referral_abuse_is_refused(client: httpx.AsyncClient, ctx: AppContext) -> None:
    a = await create(client, email="a@example.com")
    b = await create(client, email="b@example.com", referral_code=a["referral_code"])
    url = "/admin/v1/users/{}/referrer"
    # Nobody refers themselves.
    own = await client.put(
        url.format(a["id"]), headers=AUTH, json={"referral_code": a["referral_code"]}
    )
    assert own.status_code == 422
    # B already has a referrer; A cannot be referred by B (they would refer each other).
    assert (
        await client.put(
            url.format(b["id"]), headers=AUTH, json={"referral_code": a["referral_code"]}
        )
    ).status_code == 409
    mutual = await client.put(
        url.format(a["id"]), headers=AUTH, json={"referral_code": b["referral_code"]}
    )
    assert mutual.status_code == 422
    unknown = await client.put(url.format(a["id"]), headers=AUTH, json={"referral_code": "NOPE"})
    assert unknown.status_code == 404
    with_unknown_code = await client.post(
        "/admin/v1/users", headers=AUTH, json={"email": "c@example.com", "referral_code": "NOPE"}
    )
    assert with_unknown_code.status_code == 404
    assert with_unknown_code.json()["detail"] == "Unknown referral code"
    # A blocked referrer earns nothing.
    await client.post(f"/admin/v1/users/{a['id']}/block", headers=AUTH, json={"reason": "fraud"})
    await client.post(f"/admin/v1/users/{b['id']}/topup", headers=AUTH, json={"amount": "10"})
    assert [k for k, _ in await entries(ctx, a["id"])] == []
    # Detached: future deposits reward nobody.
    await client.post(f"/admin/v1/users/{a['id']}/unblock", headers=AUTH)
    assert (await client.delete(url.format(b["id"]), headers=AUTH)).status_code == 200
    await client.post(f"/admin/v1/users/{b['id']}/topup", headers=AUTH, json={"amount": "10"})
    assert await entries(ctx, a["id"]) == []


async def test_discount_lowers_rates_in_services_and_charges(
    client: httpx.AsyncClient,
    ctx: AppContext,
    make_user: MakeUser,
    make_service: MakeService,
    api: Api,
) -> None:
    user = await make_user(balance="10")
    plain = await make_service(name="Plain", rate=Decimal("0.90"), min_quantity=10)
    custom = await make_service(name="Custom", rate=Decimal("2.00"), min_quantity=10)
    await client.put(
        f"/admin/v1/users/{user.user_id}/rates/{custom}", headers=AUTH, json={"rate": "1.50"}
    )
    patched = await client.patch(
        f"/admin/v1/users/{user.user_id}", headers=AUTH, json={"discount_percent": "12.5"}
    )
    assert patched.status_code == 200, patched.text
    assert Decimal(patched.json()["discount_percent"]) == Decimal("12.5")
    rates = {s["name"]: s["rate"] for s in await api(user.key, "services")}
    # 0.90 less 12.5 % = 0.7875; the custom rate wins over the discount.
    assert rates == {"Plain": "0.7875", "Custom": "1.50"}
    order_id = order_id_of(
        await api(user.key, "add", service=plain, link="https://x.com/d", quantity=1000)
    )
    # The rate per unit (0.0007875) needs 7 digits, so the charge is shown with 7.
    assert (await api(user.key, "status", order=order_id))["charge"] == "0.7875000"
    assert await api(user.key, "balance") == {"balance": "9.21250", "currency": "USD"}
    bad = await client.patch(
        f"/admin/v1/users/{user.user_id}", headers=AUTH, json={"discount_percent": "120"}
    )
    assert bad.status_code == 422
    null = await client.patch(
        f"/admin/v1/users/{user.user_id}", headers=AUTH, json={"discount_percent": None}
    )
    assert null.status_code == 422
    await ledger_ok(ctx)
