"""Receipts of credited deposits. Self-employed: one receipt per deposit, registered with a
local stand-in of the tax service's "Мой налог" API by the delivery job, exactly once even
when the tax service fails twice and the worker is killed while the income is being
registered; the link is shown to the customer and mailed; a reversed deposit cancels it.
Gateway: the 54-FZ receipt goes to Robokassa (signed into the link) and to YooKassa (with
the payment), checked against their stand-ins."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.context import AppContext
from app.mail import service as mail
from app.receipts import service as receipts
from app.receipts.models import Receipt
from tests.support.api import MakeUser
from tests.support.client import MakeCustomer
from tests.support.env import AUTH
from tests.support.mail import Mailbox
from tests.support.npd import INN, PASSWORD, create_npd_app, registered
from tests.support.upstream import serve_app
from tests.support.yookassa import SECRET, SHOP_ID, create_yookassa_app

RK_LOGIN, RK_PASS1, RK_PASS2 = "panel-shop", "rk-pass-one", "rk-pass-two"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 (Robokassa's scheme)


@pytest.fixture(autouse=True)
def fiscal(ctx: AppContext) -> Any:
    s = ctx.settings
    saved = s.model_dump()
    s.robokassa_login, s.robokassa_password1, s.robokassa_password2 = RK_LOGIN, RK_PASS1, RK_PASS2
    s.yookassa_shop_id, s.yookassa_secret_key = SHOP_ID, SECRET
    s.currency_rates = {"RUB": Decimal("0.011")}
    s.min_deposit = Decimal("1")
    s.fiscal_backend = "self-employed"
    s.npd_inn, s.npd_password, s.npd_retry_seconds = INN, PASSWORD, 1
    yield
    for name, value in saved.items():
        setattr(s, name, value)


@pytest.fixture
async def npd(ctx: AppContext) -> AsyncIterator[FastAPI]:
    app = create_npd_app()
    async with serve_app(app) as url:
        ctx.settings.npd_api_url = f"{url}/api/v1"
        yield app


async def invoice(client: httpx.AsyncClient, key: str, gateway: str, amount: str) -> Any:
    response = await client.post(
        "/payments/invoice", data={"key": key, "gateway": gateway, "amount": amount}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "payment" in body, body
    return body


async def pay_robokassa(client: httpx.AsyncClient, payment: int, out_sum: str) -> str:
    signature = md5(f"{out_sum}:{payment}:{RK_PASS2}").upper()
    fields = {"OutSum": out_sum, "InvId": str(payment), "SignatureValue": signature}
    return (await client.post("/payments/robokassa/result", data=fields)).text


async def receipt_rows(ctx: AppContext) -> list[Receipt]:
    async with ctx.db.session() as session:
        return list(await session.scalars(select(Receipt).order_by(Receipt.id)))


async def deliver(ctx: AppContext) -> receipts.DeliveryRun:
    mailer = mail.Mailer(ctx.db, ctx.settings.mail_url, ctx.settings.mail_from)
    return await receipts.deliver_due(ctx.db, ctx.http, ctx.settings, mailer)


async def clock_moves(ctx: AppContext) -> None:
    """The backoff has passed."""
    async with ctx.db.transaction() as session:
        await session.execute(update(Receipt).values(next_attempt_at=Receipt.created_at))


async def test_one_receipt_per_deposit_even_with_failures_and_a_killed_worker(
    client: httpx.AsyncClient,
    ctx: AppContext,
    npd: FastAPI,
    mailbox: Mailbox,
    make_customer: MakeCustomer,
) -> None:
    customer = await make_customer()
    body = await invoice(client, customer.key, "robokassa", "10")
    assert await pay_robokassa(client, body["payment"], body["amount"]) == f"OK{body['payment']}"
    # The gateway notifies again: still one deposit, one receipt.
    assert await pay_robokassa(client, body["payment"], body["amount"]) == f"OK{body['payment']}"
    (row,) = await receipt_rows(ctx)
    assert (row.status, row.amount, row.currency) == ("pending", Decimal("909.10"), "RUB")
    assert row.payment_id == body["payment"]

    # The tax service fails twice: nothing registered, the receipt waits its backoff.
    npd.state.fail_next = 2
    for _ in range(2):
        run = await deliver(ctx)
        assert (run.registered, run.failed) == (0, 1)
        assert await deliver(ctx) == receipts.DeliveryRun()  # not due yet
        await clock_moves(ctx)
    # The third attempt registers the income, and the worker is killed before the answer.
    npd.state.hang_after_register = True
    killed = asyncio.create_task(deliver(ctx))
    await asyncio.wait_for(npd.state.income_seen.wait(), 10)
    killed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await killed
    (row,) = await receipt_rows(ctx)
    assert (row.status, row.attempts, row.external_id) == ("pending", 3, None)

    # The next attempt finds the income at the tax service instead of sending it again.
    await clock_moves(ctx)
    run = await deliver(ctx)
    assert (run.registered, run.failed) == (1, 0)
    (income,) = registered(npd)
    assert npd.state.posts == 3  # two refused, one registered: never a second income
    assert income["name"] == f"Пополнение баланса №{row.id}"
    assert income["totalAmount"] == "909.10"
    (row,) = await receipt_rows(ctx)
    url = f"{ctx.settings.npd_api_url}/receipt/{INN}/{income['approvedReceiptUuid']}/print"
    assert (row.status, row.external_id, row.url) == (
        "registered",
        income["approvedReceiptUuid"],
        url,
    )
    assert await deliver(ctx) == receipts.DeliveryRun()

    # Mailed, shown to the customer, listed for the operator.
    (mailed,) = await mailbox.wait_for(customer.email)
    assert mailed.subject == "Your receipt" and url in mailed.body
    deposits = await client.get("/client/v1/deposits", headers=customer.auth)
    assert deposits.json()[0]["receipt_url"] == url
    listed = await client.get("/admin/v1/receipts", headers=AUTH)
    assert [(r["payment_id"], r["status"], r["url"]) for r in listed.json()] == [
        (body["payment"], "registered", url)
    ]

    # The deposit is reversed: the receipt is cancelled at the tax service.
    async with ctx.db.transaction() as session:
        status = await receipts.cancel_for_deposit(session, deposit_entry_id=row.deposit_entry_id)
    assert status == "cancel_pending"
    run = await deliver(ctx)
    assert run.cancelled == 1
    assert registered(npd) == []
    (row,) = await receipt_rows(ctx)
    assert row.status == "cancelled" and row.cancelled_at is not None


async def test_a_receipt_never_sent_is_cancelled_at_once_and_none_means_none(
    client: httpx.AsyncClient, ctx: AppContext, npd: FastAPI, make_user: MakeUser
) -> None:
    user = await make_user()
    topup = await client.post(
        f"/admin/v1/users/{user.user_id}/topup",
        json={"amount": "5", "reason": "bank transfer"},
        headers=AUTH,
    )
    assert topup.status_code == 200, topup.text
    (row,) = await receipt_rows(ctx)
    # An operator's top-up is in the panel's currency (USD here): not for the tax service.
    assert (row.status, row.currency) == ("failed", "USD")
    assert "roubles" in (row.last_error or "")

    ctx.settings.currency = "RUB"
    second = await client.post(
        f"/admin/v1/users/{user.user_id}/topup",
        json={"amount": "7", "reason": "cash"},
        headers=AUTH,
    )
    assert second.status_code == 200
    rows = await receipt_rows(ctx)
    assert rows[1].status == "pending"
    async with ctx.db.transaction() as session:
        status = await receipts.cancel_for_deposit(
            session, deposit_entry_id=rows[1].deposit_entry_id
        )
    assert status == "cancelled"
    assert await deliver(ctx) == receipts.DeliveryRun()
    assert npd.state.posts == 0

    ctx.settings.fiscal_backend = "none"
    await client.post(
        f"/admin/v1/users/{user.user_id}/topup",
        json={"amount": "3", "reason": "cash"},
        headers=AUTH,
    )
    assert len(await receipt_rows(ctx)) == 2


async def test_gateway_mode_passes_the_receipt_to_robokassa_and_yookassa(
    client: httpx.AsyncClient, ctx: AppContext, make_user: MakeUser
) -> None:
    ctx.settings.fiscal_backend = "gateway"
    user = await make_user(email="payer@example.com")
    body = await invoice(client, user.key, "robokassa", "10")
    query = parse_qs(urlsplit(body["pay_url"]).query)
    encoded = query["Receipt"][0]  # parse_qs decodes once: the form that is signed
    receipt = json.loads(unquote(encoded))
    assert receipt["items"] == [
        {
            "name": f"Пополнение баланса №{body['payment']}",
            "quantity": 1,
            "sum": 909.1,
            "payment_method": "full_payment",
            "payment_object": "service",
            "tax": "none",
        }
    ]
    assert encoded == quote(json.dumps(receipt, ensure_ascii=False, separators=(",", ":")), "")
    signature = md5(f"{RK_LOGIN}:909.10:{body['payment']}:{encoded}:{RK_PASS1}")
    assert query["SignatureValue"] == [signature]
    assert await pay_robokassa(client, body["payment"], "909.10") == f"OK{body['payment']}"
    (row,) = await receipt_rows(ctx)
    assert (row.backend, row.status) == ("gateway", "gateway")

    yookassa = create_yookassa_app()
    async with serve_app(yookassa) as url:
        ctx.settings.yookassa_api_url = f"{url}/v3"
        made = await invoice(client, user.key, "yookassa", "10")
    (payment,) = yookassa.state.payments.values()
    assert payment["receipt"] == {
        "customer": {"email": "payer@example.com"},
        "items": [
            {
                "description": f"Пополнение баланса №{made['payment']}",
                "quantity": "1.00",
                "amount": {"value": "909.10", "currency": "RUB"},
                "vat_code": 1,
                "payment_mode": "full_payment",
                "payment_subject": "service",
            }
        ],
    }
