"""Chargebacks (ToS 4.6): the operator's "payment disputed" and YooKassa's refund
notification run one command that blocks the account, cancels its active orders with
their refunds, forfeits the balance and cancels the disputed deposit's receipt, exactly
once (a repeat answers the first result). The evidence pack gathers what a dispute needs
in one JSON file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.accounts.models import User
from app.audit.models import AuditEntry
from app.context import AppContext
from app.http.auth import ADMIN
from app.ledger.models import LedgerEntry
from app.orders.models import Order, UpstreamEvent
from app.receipts.models import Receipt
from tests.support.api import Api, MakeService, MakeUser
from tests.support.client import MakeCustomer
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok
from tests.support.upstream import serve_app
from tests.support.yookassa import SECRET, SHOP_ID, create_yookassa_app, refund, succeed


@pytest.fixture(autouse=True)
def money_settings(ctx: AppContext) -> Any:
    s = ctx.settings
    saved = s.model_dump()
    s.yookassa_shop_id, s.yookassa_secret_key = SHOP_ID, SECRET
    s.currency_rates = {"RUB": Decimal("0.011")}
    s.min_deposit = Decimal("1")
    s.fiscal_backend = "self-employed"
    yield
    for name, value in saved.items():
        setattr(s, name, value)


@pytest.fixture
async def yookassa(ctx: AppContext) -> AsyncIterator[FastAPI]:
    app = create_yookassa_app()
    async with serve_app(app) as url:
        ctx.settings.yookassa_api_url = f"{url}/v3"
        yield app


async def user_row(ctx: AppContext, user_id: int) -> User:
    async with ctx.db.session() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user


async def count(ctx: AppContext, stmt: Any) -> int:
    async with ctx.db.session() as session:
        return int(await session.scalar(stmt) or 0)


def forfeits(user_id: int) -> Any:
    return (
        select(func.count())
        .select_from(LedgerEntry)
        .where(LedgerEntry.user_id == user_id, LedgerEntry.kind == "forfeit")
    )


async def test_the_operator_chargeback_blocks_refunds_and_forfeits_once(
    client: httpx.AsyncClient,
    ctx: AppContext,
    api: Api,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    user = await make_user("100")
    service = await make_service()
    placed = await api(user.key, "add", service=service, link="https://x.com/a", quantity=1000)
    order_id = placed["order"]  # 0.90 charged, still Pending: nothing went upstream
    url = f"/admin/v1/users/{user.user_id}/chargeback"
    first = await client.post(url, json={"reason": "Card holder disputed"}, headers=AUTH)
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["repeated"] is False
    assert (body["withdrawn"], body["cancel_requested"]) == ([order_id], [])
    assert Decimal(body["forfeited"]) == Decimal("100")  # the refund landed before
    assert body["source"] == ADMIN.name
    blocked = await user_row(ctx, user.user_id)
    assert (blocked.status, blocked.balance) == ("blocked", Decimal(0))
    async with ctx.db.session() as session:
        order = await session.get(Order, order_id)
        assert order is not None and order.status == "Canceled"
    await ledger_ok(ctx)

    again = await client.post(url, json={"reason": "clicked twice"}, headers=AUTH)
    assert again.status_code == 200
    assert again.json() == {**body, "repeated": True}
    assert await count(ctx, forfeits(user.user_id)) == 1
    audited = select(func.count()).where(AuditEntry.action == "user.chargeback")
    assert await count(ctx, audited) == 1


async def test_a_chargeback_names_an_invoice_of_the_user(
    client: httpx.AsyncClient, ctx: AppContext, make_user: MakeUser
) -> None:
    user = await make_user("5")
    for path, body, status in (
        ("/admin/v1/users/999999/chargeback", {"reason": "x"}, 404),
        (f"/admin/v1/users/{user.user_id}/chargeback", {"reason": "x", "invoice_id": 42}, 404),
        (f"/admin/v1/users/{user.user_id}/chargeback", {"reason": ""}, 422),
        (f"/admin/v1/users/{user.user_id}/chargeback", {}, 422),
    ):
        response = await client.post(path, json=body, headers=AUTH)
        assert response.status_code == status, (path, body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert (await user_row(ctx, user.user_id)).status == "active"


async def test_a_yookassa_refund_reverses_the_deposit_once(
    client: httpx.AsyncClient,
    ctx: AppContext,
    yookassa: FastAPI,
    make_customer: MakeCustomer,
) -> None:
    customer = await make_customer()
    made = await client.post(
        "/client/v1/deposits", json={"gateway": "yookassa", "amount": "10"}, headers=customer.auth
    )
    assert made.status_code == 201, made.text
    (external_id,) = yookassa.state.payments
    succeed(yookassa, external_id)
    notify = "/payments/yookassa/notify"
    paid = {"type": "notification", "event": "payment.succeeded", "object": {"id": external_id}}
    assert (await client.post(notify, json=paid)).status_code == 200
    assert (await user_row(ctx, customer.user_id)).balance == Decimal("10")

    # Anyone can post a refund notification: only a refund YooKassa confirms counts.
    forged = {"type": "notification", "event": "refund.succeeded", "object": {"id": "nope"}}
    assert (await client.post(notify, json=forged)).status_code == 400
    pending = refund(yookassa, external_id, status="pending")
    waiting = {"type": "notification", "event": "refund.succeeded", "object": {"id": pending}}
    assert (await client.post(notify, json=waiting)).status_code == 400
    assert (await user_row(ctx, customer.user_id)).status == "active"

    refund_id = refund(yookassa, external_id)
    reversal = {"type": "notification", "event": "refund.succeeded", "object": {"id": refund_id}}
    for _ in range(2):  # YooKassa notifies again: nothing more happens
        response = await client.post(notify, json=reversal)
        assert response.status_code == 200, response.text
    reversed_user = await user_row(ctx, customer.user_id)
    assert (reversed_user.status, reversed_user.balance) == ("blocked", Decimal(0))
    assert await count(ctx, forfeits(customer.user_id)) == 1
    async with ctx.db.session() as session:
        receipt = await session.scalar(select(Receipt))
        audit = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "user.chargeback")
        )
    # The receipt was never sent to the tax service: cancelled at once.
    assert receipt is not None and receipt.status == "cancelled"
    assert audit is not None and audit.actor == "gateway:yookassa"
    assert audit.after is not None and audit.after["invoice_id"] == made.json()["payment"]
    await ledger_ok(ctx)


async def test_the_evidence_pack_gathers_what_a_dispute_needs(
    client: httpx.AsyncClient,
    ctx: AppContext,
    api: Api,
    yookassa: FastAPI,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    version = await client.post(
        "/admin/v1/legal/terms/versions",
        json={"language": "en", "text": "Orders are final."},
        headers=AUTH,
    )
    version_id = version.json()["id"]
    customer = await make_customer("50")
    service = await make_service()
    placed = await api(customer.key, "add", service=service, link="https://x.com/e", quantity=100)
    async with ctx.db.transaction() as session:
        session.add(
            UpstreamEvent(order_id=placed["order"], action="add", outcome="sent", detail={"a": 1})
        )
    made = await client.post(
        "/client/v1/deposits", json={"gateway": "yookassa", "amount": "5"}, headers=customer.auth
    )
    assert made.status_code == 201
    ticket = await client.post(
        "/client/v1/tickets",
        json={"subject": "Where?", "category": "order", "message": "Hello"},
        headers=customer.auth,
    )
    assert ticket.status_code == 201, ticket.text

    response = await client.get(f"/admin/v1/users/{customer.user_id}/evidence", headers=AUTH)
    assert response.status_code == 200, response.text
    assert "attachment" in response.headers["content-disposition"]
    pack = response.json()
    assert pack["user"]["id"] == customer.user_id
    assert [(a["document"], a["version_id"], a["action"]) for a in pack["acceptances"]] == [
        ("terms", version_id, "order"),
        ("terms", version_id, "deposit"),
    ]
    assert pack["legal_versions"][0]["text"] == "Orders are final."
    assert {a["by"] for a in pack["client_addresses"]} >= {"sign-in", "deposit"}
    (invoice,) = pack["invoices"]
    assert invoice["gateway"] == "yookassa" and invoice["receipt"] is None
    (order,) = pack["orders"]
    assert order["upstream_reports"][0]["outcome"] == "sent"
    assert pack["tickets"][0]["subject"] == "Where?"
    assert pack["chargebacks"] == []
    audited = select(func.count()).where(AuditEntry.action == "user.evidence")
    assert await count(ctx, audited) == 1
    missing = await client.get("/admin/v1/users/999999/evidence", headers=AUTH)
    assert missing.status_code == 404


async def test_a_chargeback_locks_the_user_and_the_referrer_in_the_global_order(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    """Users are locked by ascending id (docs/architecture.md, "Lock order"): while another
    transaction holds the referrer (the lower id), a chargeback of the referred user waits
    for it before it locks the referred user, so neither can wait on the other."""
    referrer = (await client.post("/admin/v1/users", headers=AUTH, json={"email": "r@x.io"})).json()
    body = {"email": "c@y.io", "referral_code": referrer["referral_code"], "initial_balance": "5"}
    referred = (await client.post("/admin/v1/users", headers=AUTH, json=body)).json()
    assert referrer["id"] < referred["id"]
    url = ctx.settings.database_url or ""
    holder, probe = await asyncpg.connect(url), await asyncpg.connect(url)
    try:
        holding = holder.transaction()
        await holding.start()
        await holder.execute("SELECT id FROM users WHERE id = $1 FOR UPDATE", referrer["id"])
        disputed = asyncio.create_task(
            client.post(
                f"/admin/v1/users/{referred['id']}/chargeback",
                headers=AUTH,
                json={"reason": "dispute"},
            )
        )
        while not await probe.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()"
        ):
            assert not disputed.done(), (await disputed).text
            await asyncio.sleep(0.01)
        # The chargeback waits for the referrer and holds no lock on the referred user yet.
        async with probe.transaction():
            free = await probe.fetchval(
                "SELECT id FROM users WHERE id = $1 FOR UPDATE SKIP LOCKED", referred["id"]
            )
        assert free == referred["id"]
        await holding.rollback()
        answer = await disputed
        assert answer.status_code == 200, answer.text
        assert answer.json()["repeated"] is False
    finally:
        await holder.close()
        await probe.close()
    await ledger_ok(ctx)
