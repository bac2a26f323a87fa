"""Referral abuse (ToS 7.1–7.2, ToU 3.5): a referral whose sign-up shares a public client
address or a browser with the referrer, or a second account on the referrer's own mailbox,
has its reward held for the operator instead of credited; the operator releases or voids
it; a deposit reversed within REFERRAL_REVERSAL_DAYS takes its reward back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from app.accounts.models import User
from app.context import AppContext
from app.referrals.models import ReferralReward
from tests.support.client import MakeCustomer
from tests.support.env import AUTH
from tests.support.web import refs

PASSWORD = "long enough password"
From = Callable[[str], Any]


@asynccontextmanager
async def client_at(app: FastAPI, ip: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose requests come from `ip` (in-process: nothing is sent anywhere)."""
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://panel.test") as c:
        yield c


async def code_of(ctx: AppContext, user_id: int) -> str:
    async with ctx.db.session() as session:
        code = await session.scalar(select(User.referral_code).where(User.id == user_id))
    assert code
    return str(code)


async def user_id_of(ctx: AppContext, email: str) -> int:
    async with ctx.db.session() as session:
        found = await session.scalar(select(User.id).where(User.email == email))
    assert found is not None
    return int(found)


async def register(c: httpx.AsyncClient, email: str, code: str) -> int:
    made = await c.post(
        "/client/v1/register",
        json={"email": email, "password": PASSWORD, "referral_code": code, "accept_terms": True},
    )
    assert made.status_code == 201, made.text
    return int(made.json()["user_id"])


async def deposit(client: httpx.AsyncClient, user_id: int, amount: str = "100") -> None:
    topup = await client.post(
        f"/admin/v1/users/{user_id}/topup", json={"amount": amount, "reason": "bank"}, headers=AUTH
    )
    assert topup.status_code == 200, topup.text


async def rewards(client: httpx.AsyncClient, status: str | None = None) -> list[dict[str, Any]]:
    query = f"?status={status}" if status else ""
    found = await client.get(f"/admin/v1/referral-rewards{query}", headers=AUTH)
    assert found.status_code == 200, found.text
    rows: list[dict[str, Any]] = found.json()
    return rows


async def balance(ctx: AppContext, user_id: int) -> Decimal:
    async with ctx.db.session() as session:
        found = await session.scalar(select(User.balance).where(User.id == user_id))
    return Decimal(found or 0)


async def test_a_second_account_from_the_referrers_browser_is_held_then_released(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    home = await client.get("/web/")
    form = {"csrf": refs(home.text).csrf or "", "password": PASSWORD, "accept_terms": "1"}
    first = await client.post("/web/signup", data={**form, "email": "boss@example.com"})
    assert first.status_code == 200 and client.cookies.get("panel_device")
    referrer = await user_id_of(ctx, "boss@example.com")
    code = await code_of(ctx, referrer)
    # The same browser signs up again with the referral link.
    second = await client.post(
        "/web/signup", data={**form, "email": "other@example.org", "ref": code}
    )
    assert second.status_code == 200, second.text
    referred = await user_id_of(ctx, "other@example.org")
    await deposit(client, referred)

    (held,) = await rewards(client, "held")
    assert (held["referrer_id"], held["referred_id"], held["amount"]) == (
        referrer,
        referred,
        "5.00000000",
    )
    assert "browser" in held["hold_reason"]
    assert await balance(ctx, referrer) == 0  # nothing credited while held

    released = await client.post(f"/admin/v1/referral-rewards/{held['id']}/release", headers=AUTH)
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "credited" and released.json()["released_by"]
    assert await balance(ctx, referrer) == Decimal(5)
    again = await client.post(f"/admin/v1/referral-rewards/{held['id']}/release", headers=AUTH)
    assert again.status_code == 409
    assert await balance(ctx, referrer) == Decimal(5)


async def test_the_referrers_own_mailbox_is_held_and_voiding_it_moves_no_money(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    referrer = await register(client, "ann.smith@gmail.com", "")
    referred = await register(client, "annsmith+two@gmail.com", await code_of(ctx, referrer))
    await deposit(client, referred)
    (held,) = await rewards(client, "held")
    assert held["hold_reason"] == "the referrer's own mailbox"
    voided = await client.post(
        f"/admin/v1/referral-rewards/{held['id']}/void", json={"reason": "self"}, headers=AUTH
    )
    assert voided.status_code == 200, voided.text
    assert voided.json()["status"] == "voided"
    assert await balance(ctx, referrer) == 0


async def test_a_shared_public_address_holds_a_loopback_one_does_not(
    client: httpx.AsyncClient, ctx: AppContext, app: FastAPI, make_customer: MakeCustomer
) -> None:
    referrer = await make_customer()
    async with client_at(app, "81.2.69.160") as same:
        signed = await same.post(
            "/client/v1/login", json={"email": referrer.email, "password": referrer.password}
        )
        assert signed.status_code == 200, signed.text
        code = await code_of(ctx, referrer.user_id)
        shared = await register(same, "friend@example.net", code)
    async with client_at(app, "81.2.69.161") as elsewhere:
        apart = await register(elsewhere, "stranger@example.net", code)
    honest = await register(client, "local@example.net", code)  # 127.0.0.1 tells nothing
    for user_id in (shared, apart, honest):
        await deposit(client, user_id, "10")
    rows = {r["referred_id"]: r for r in await rewards(client)}
    assert rows[shared]["status"] == "held"
    assert rows[shared]["hold_reason"] == "sign-up from an address the referrer used"
    assert rows[apart]["status"] == "credited" and rows[honest]["status"] == "credited"
    assert await balance(ctx, referrer.user_id) == Decimal("1.00000")


async def test_a_reversed_deposit_takes_its_reward_back(
    client: httpx.AsyncClient, ctx: AppContext, make_customer: MakeCustomer
) -> None:
    referrer = await make_customer("3")
    referred = await register(client, "payer@example.com", await code_of(ctx, referrer.user_id))
    await deposit(client, referred, "40")
    assert await balance(ctx, referrer.user_id) == Decimal(5)
    charged = await client.post(
        f"/admin/v1/users/{referred}/chargeback", json={"reason": "disputed"}, headers=AUTH
    )
    assert charged.status_code == 200, charged.text
    (row,) = await rewards(client)
    assert row["status"] == "voided" and "deposit reversed" in row["void_reason"]
    assert await balance(ctx, referrer.user_id) == Decimal(3)
    async with ctx.db.session() as session:
        reward = await session.scalar(select(ReferralReward))
    assert reward is not None and reward.void_entry_id is not None
