"""Referral payouts (AFFILIATE_PAYOUTS): with `request` a referrer's rewards accrue and
reach their balance when they ask; with `review` the operator approves or rejects the
request first. Every reward is paid once, whatever the order of requests, approvals,
rejections and voids; the default (`balance`) credits at once, as before."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.context import AppContext
from app.ledger.models import LedgerEntry
from app.referrals.models import ReferralPayout
from tests.support.client import Customer, MakeCustomer
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok


@pytest.fixture
def payouts(ctx: AppContext) -> Iterator[Any]:
    """Set AFFILIATE_PAYOUTS and AFFILIATE_MIN_PAYOUT for one test."""
    before = ctx.settings.affiliate_payouts, ctx.settings.affiliate_min_payout

    def choose(mode: str, minimum: str = "0") -> None:
        ctx.settings.affiliate_payouts = mode  # type: ignore[assignment]
        ctx.settings.affiliate_min_payout = Decimal(minimum)

    yield choose
    ctx.settings.affiliate_payouts, ctx.settings.affiliate_min_payout = before


async def referred_deposit(
    client: httpx.AsyncClient, referrer: Customer, amount: str, email: str
) -> None:
    """A customer referred by `referrer` opens an account with a first deposit."""
    code = (await client.get("/client/v1/referrals", headers=referrer.auth)).json()["code"]
    body = {"email": email, "referral_code": code, "initial_balance": amount}
    created = await client.post("/admin/v1/users", headers=AUTH, json=body)
    assert created.status_code == 201, created.text


async def referral_entries(ctx: AppContext, user_id: int) -> list[Decimal]:
    async with ctx.db.session() as session:
        return list(
            await session.scalars(
                select(LedgerEntry.amount)
                .where(LedgerEntry.user_id == user_id, LedgerEntry.kind == "referral")
                .order_by(LedgerEntry.id)
            )
        )


async def test_balance_mode_credits_at_once_and_refuses_payout_requests(
    client: httpx.AsyncClient, ctx: AppContext, make_customer: MakeCustomer
) -> None:
    referrer = await make_customer("0")
    await referred_deposit(client, referrer, "20", "a@example.com")
    assert await referral_entries(ctx, referrer.user_id) == [Decimal("1")]
    refused = await client.post("/client/v1/referrals/payouts", headers=referrer.auth)
    assert (refused.status_code, refused.json()["type"]) == (422, "/errors/payouts-off")
    shown = (await client.get("/client/v1/referrals", headers=referrer.auth)).json()
    assert (shown["commission"], shown["payouts_mode"], shown["available"]) == (
        "0.05",
        "balance",
        "0.00000",
    )


async def test_request_mode_pays_accrued_rewards_once_above_the_minimum(
    client: httpx.AsyncClient, ctx: AppContext, make_customer: MakeCustomer, payouts: Any
) -> None:
    payouts("request", "1.5")
    referrer = await make_customer("0")
    await referred_deposit(client, referrer, "20", "a@example.com")
    assert await referral_entries(ctx, referrer.user_id) == []  # accrued, not credited
    shown = (await client.get("/client/v1/referrals", headers=referrer.auth)).json()
    assert (shown["available"], shown["min_payout"]) == ("1.00000", "1.50000")
    assert [r["status"] for r in shown["rewards"]] == ["accrued"]
    small = await client.post("/client/v1/referrals/payouts", headers=referrer.auth)
    assert (small.status_code, small.json()["type"]) == (422, "/errors/payout-too-small")

    await referred_deposit(client, referrer, "10", "b@example.com")
    paid = await client.post("/client/v1/referrals/payouts", headers=referrer.auth)
    assert paid.status_code == 201, paid.text
    assert (paid.json()["amount"], paid.json()["status"]) == ("1.50000", "paid")
    assert await referral_entries(ctx, referrer.user_id) == [Decimal("1.5")]
    again = await client.post("/client/v1/referrals/payouts", headers=referrer.auth)
    assert again.json()["type"] == "/errors/payout-too-small"
    shown = (await client.get("/client/v1/referrals", headers=referrer.auth)).json()
    assert shown["available"] == "0.00000"
    assert [r["status"] for r in shown["rewards"]] == ["credited", "credited"]
    assert [(p["amount"], p["status"]) for p in shown["payouts"]] == [("1.50000", "paid")]
    await ledger_ok(ctx)


async def test_concurrent_payout_requests_pay_once(
    client: httpx.AsyncClient, ctx: AppContext, make_customer: MakeCustomer, payouts: Any
) -> None:
    payouts("request")
    referrer = await make_customer("0")
    await referred_deposit(client, referrer, "40", "a@example.com")
    answers = await asyncio.gather(
        *(client.post("/client/v1/referrals/payouts", headers=referrer.auth) for _ in range(4))
    )
    assert sorted(a.status_code for a in answers) == [201, 422, 422, 422]
    assert await referral_entries(ctx, referrer.user_id) == [Decimal("2")]
    await ledger_ok(ctx)


async def test_review_mode_waits_for_the_operator_who_approves_or_rejects_once(
    client: httpx.AsyncClient, ctx: AppContext, make_customer: MakeCustomer, payouts: Any
) -> None:
    payouts("review")
    referrer = await make_customer("0")
    await referred_deposit(client, referrer, "20", "a@example.com")
    asked = await client.post("/client/v1/referrals/payouts", headers=referrer.auth)
    assert (asked.status_code, asked.json()["status"]) == (201, "pending")
    payout_id = asked.json()["id"]
    await referred_deposit(client, referrer, "40", "b@example.com")
    twice = await client.post("/client/v1/referrals/payouts", headers=referrer.auth)
    assert (twice.status_code, twice.json()["type"]) == (409, "/errors/payout-pending")
    assert await referral_entries(ctx, referrer.user_id) == []
    # The reward under review cannot be voided until the request is decided.
    rewards = (
        await client.get(
            "/admin/v1/referral-rewards", headers=AUTH, params={"referrer_id": referrer.user_id}
        )
    ).json()
    in_payout = rewards[-1]["id"]
    refused = await client.post(
        f"/admin/v1/referral-rewards/{in_payout}/void", headers=AUTH, json={"reason": "x"}
    )
    assert (refused.status_code, refused.json()["type"]) == (409, "/errors/reward-in-payout")

    listed = await client.get(
        "/admin/v1/referral-payouts", headers=AUTH, params={"status": "pending"}
    )
    assert [p["id"] for p in listed.json()] == [payout_id]
    approved = await client.post(f"/admin/v1/referral-payouts/{payout_id}/approve", headers=AUTH)
    assert (approved.json()["status"], approved.json()["amount"]) == ("paid", "1.00000000")
    decided = await client.post(f"/admin/v1/referral-payouts/{payout_id}/approve", headers=AUTH)
    assert (decided.status_code, decided.json()["type"]) == (409, "/errors/payout-decided")
    assert await referral_entries(ctx, referrer.user_id) == [Decimal("1")]

    # The second deposit's reward: asked for, rejected, available again, voided for good.
    second = (await client.post("/client/v1/referrals/payouts", headers=referrer.auth)).json()
    rejected = await client.post(
        f"/admin/v1/referral-payouts/{second['id']}/reject",
        headers=AUTH,
        json={"reason": "Self-referral"},
    )
    assert (rejected.json()["status"], rejected.json()["reject_reason"]) == (
        "rejected",
        "Self-referral",
    )
    shown = (await client.get("/client/v1/referrals", headers=referrer.auth)).json()
    assert shown["available"] == "2.00000"
    accrued = [r["id"] for r in shown["rewards"] if r["status"] == "accrued"]
    voided = await client.post(
        f"/admin/v1/referral-rewards/{accrued[0]}/void", headers=AUTH, json={"reason": "fraud"}
    )
    assert voided.json()["status"] == "voided"
    shown = (await client.get("/client/v1/referrals", headers=referrer.auth)).json()
    assert shown["available"] == "0.00000"
    assert await referral_entries(ctx, referrer.user_id) == [Decimal("1")]
    async with ctx.db.session() as session:
        states = list(
            await session.scalars(select(ReferralPayout.status).order_by(ReferralPayout.id))
        )
    assert states == ["paid", "rejected"]
    await ledger_ok(ctx)
