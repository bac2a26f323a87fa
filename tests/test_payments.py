"""Deposits through Robokassa, Free-Kassa and YooKassa: valid, forged, replayed, mismatched."""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.context import AppContext
from app.ledger.models import LedgerEntry
from app.payments import service as payments
from app.payments.models import Payment, PaymentNotification
from tests.support.api import Api, MakeUser
from tests.support.client import MakeCustomer
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok
from tests.support.upstream import serve_app
from tests.support.yookassa import SECRET, SHOP_ID, create_yookassa_app, succeed

RK_LOGIN, RK_PASS1, RK_PASS2 = "panel-shop", "rk-pass-one", "rk-pass-two"
FK_MERCHANT, FK_SECRET1, FK_SECRET2 = "4242", "fk-word-one", "fk-word-two"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 (the gateways' scheme)


@pytest.fixture(autouse=True)
def gateways(ctx: AppContext) -> Any:
    s = ctx.settings
    saved = s.model_dump()
    s.robokassa_login, s.robokassa_password1, s.robokassa_password2 = RK_LOGIN, RK_PASS1, RK_PASS2
    s.freekassa_merchant_id, s.freekassa_secret1 = FK_MERCHANT, FK_SECRET1
    s.freekassa_secret2 = FK_SECRET2
    s.yookassa_shop_id, s.yookassa_secret_key = SHOP_ID, SECRET
    s.currency_rates = {"RUB": Decimal("0.011")}
    s.min_deposit = Decimal("1")
    yield
    for name, value in saved.items():
        setattr(s, name, value)


@pytest.fixture
async def yookassa(ctx: AppContext) -> AsyncIterator[FastAPI]:
    app = create_yookassa_app()
    async with serve_app(app) as url:
        ctx.settings.yookassa_api_url = f"{url}/v3"
        yield app


@pytest.fixture
def api_invoice(client: httpx.AsyncClient) -> Any:
    async def call(key: str, gateway: str, amount: str) -> dict[str, Any]:
        response = await client.post(
            "/payments/invoice", data={"key": key, "gateway": gateway, "amount": amount}
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    return call


async def deposits(ctx: AppContext, user_id: int) -> list[Decimal]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(LedgerEntry.amount)
            .where(LedgerEntry.user_id == user_id, LedgerEntry.kind == "deposit")
            .order_by(LedgerEntry.id)
        )
        return list(rows)


async def outcomes(ctx: AppContext) -> list[str]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(PaymentNotification.outcome).order_by(PaymentNotification.id)
        )
        return list(rows)


def robokassa_fields(
    inv_id: int, out_sum: str, password: str = RK_PASS2, **shp: str
) -> dict[str, str]:
    base = ":".join([out_sum, str(inv_id), password] + [f"{k}={v}" for k, v in sorted(shp.items())])
    return {"OutSum": out_sum, "InvId": str(inv_id), "SignatureValue": md5(base).upper(), **shp}


def freekassa_fields(
    order: int, amount: str, intid: str = "9001", secret: str = FK_SECRET2
) -> dict[str, str]:
    return {
        "MERCHANT_ID": FK_MERCHANT,
        "AMOUNT": amount,
        "intid": intid,
        "MERCHANT_ORDER_ID": str(order),
        "P_EMAIL": "payer@example.com",
        "CUR_ID": "36",
        "SIGN": md5(f"{FK_MERCHANT}:{amount}:{secret}:{order}"),
    }


async def test_invoice_prices_in_the_gateway_currency_and_signs_the_link(
    api_invoice: Any, make_user: MakeUser
) -> None:
    user = await make_user()
    body = await api_invoice(user.key, "robokassa", "10")
    # 10 USD at 0.011 USD per ruble = 909.0909… RUB, rounded up to the kopeck.
    assert body["amount"] == "909.10" and body["currency"] == "RUB"
    assert body["credit"] == "10.00000" and body["credit_currency"] == "USD"
    signature = md5(f"{RK_LOGIN}:909.10:{body['payment']}:{RK_PASS1}")
    assert f"SignatureValue={signature}" in body["pay_url"]
    fk = await api_invoice(user.key, "freekassa", "5")
    assert fk["amount"] == "454.55"
    fk_sign = md5(f"{FK_MERCHANT}:454.55:{FK_SECRET1}:RUB:{fk['payment']}")
    assert f"s={fk_sign}" in fk["pay_url"]


async def test_invoice_errors(api_invoice: Any, make_user: MakeUser, ctx: AppContext) -> None:
    user = await make_user()
    assert await api_invoice("nope", "robokassa", "10") == {"error": "Invalid API key"}
    assert await api_invoice(user.key, "paypal", "10") == {"error": "Incorrect gateway"}
    assert await api_invoice(user.key, "robokassa", "ten") == {"error": "Incorrect amount"}
    assert await api_invoice(user.key, "robokassa", "NaN") == {"error": "Incorrect amount"}
    assert await api_invoice(user.key, "robokassa", "0.5") == {
        "error": "Minimum deposit is 1.00000"
    }
    ctx.settings.robokassa_password2 = None
    assert await api_invoice(user.key, "robokassa", "10") == {
        "error": "Payment gateway is not available"
    }


async def test_robokassa_valid_replayed_forged_and_mismatched(
    client: httpx.AsyncClient, api_invoice: Any, make_user: MakeUser, ctx: AppContext, api: Api
) -> None:
    user = await make_user()
    inv = (await api_invoice(user.key, "robokassa", "10"))["payment"]
    url = "/payments/robokassa/result"

    forged = await client.post(url, data=robokassa_fields(inv, "909.10", password="guess"))
    assert forged.status_code == 400
    cheaper = await client.post(url, data=robokassa_fields(inv, "1.00"))  # signed, wrong sum
    assert cheaper.status_code == 400
    unknown = await client.post(url, data=robokassa_fields(inv + 100, "909.10"))
    assert unknown.status_code == 400
    assert await deposits(ctx, user.user_id) == []

    # Robokassa formats OutSum with six decimals; Shp_ parameters are part of the signature.
    good = robokassa_fields(inv, "909.100000", Shp_user=str(user.user_id))
    first = await client.post(url, data=good)
    assert (first.status_code, first.text) == (200, f"OK{inv}")
    replay = await client.get(url, params=good)
    assert (replay.status_code, replay.text) == (200, f"OK{inv}")
    tampered = {**good, "Shp_user": "999"}
    assert (await client.post(url, data=tampered)).status_code == 400

    assert await deposits(ctx, user.user_id) == [Decimal("10")]
    assert await api(user.key, "balance") == {"balance": "10.00000", "currency": "USD"}
    assert await outcomes(ctx) == [
        "bad_signature",
        "amount_mismatch",
        "unknown_payment",
        "credited",
        "replay",
        "bad_signature",
    ]
    await ledger_ok(ctx)


async def test_robokassa_sha256_when_the_shop_uses_it(
    client: httpx.AsyncClient, api_invoice: Any, make_user: MakeUser, ctx: AppContext
) -> None:
    ctx.settings.robokassa_hash = "sha256"
    user = await make_user()
    inv = (await api_invoice(user.key, "robokassa", "2"))["payment"]
    signature = hashlib.sha256(f"181.82:{inv}:{RK_PASS2}".encode()).hexdigest()
    fields = {"OutSum": "181.82", "InvId": str(inv), "SignatureValue": signature}
    assert (await client.post("/payments/robokassa/result", data=fields)).text == f"OK{inv}"
    # An MD5 signature is not accepted once the shop signs with SHA-256.
    md5_signed = robokassa_fields(inv, "181.82")
    assert (await client.post("/payments/robokassa/result", data=md5_signed)).status_code == 400
    assert await deposits(ctx, user.user_id) == [Decimal("2")]


async def test_freekassa_valid_replayed_forged_and_mismatched(
    client: httpx.AsyncClient, api_invoice: Any, make_user: MakeUser, ctx: AppContext
) -> None:
    user = await make_user()
    inv = (await api_invoice(user.key, "freekassa", "10"))["payment"]
    url = "/payments/freekassa/notify"
    assert (
        await client.post(url, data=freekassa_fields(inv, "909.10", secret="x"))
    ).status_code == 400
    assert (await client.post(url, data=freekassa_fields(inv, "900"))).status_code == 400
    other_shop = {**freekassa_fields(inv, "909.10"), "MERCHANT_ID": "1"}
    other_shop["SIGN"] = md5(f"1:909.10:{FK_SECRET2}:{inv}")
    assert (await client.post(url, data=other_shop)).status_code == 400
    assert await deposits(ctx, user.user_id) == []

    ok = await client.post(url, data=freekassa_fields(inv, "909.10"))
    assert (ok.status_code, ok.text) == (200, "YES")
    again = await client.post(url, data=freekassa_fields(inv, "909.10"))
    assert (again.status_code, again.text) == (200, "YES")
    # The same invoice paid "again" under another transaction id is not a second deposit.
    assert (
        await client.post(url, data=freekassa_fields(inv, "909.10", intid="777"))
    ).status_code == 400
    assert await deposits(ctx, user.user_id) == [Decimal("10")]
    assert await outcomes(ctx) == [
        "bad_signature",
        "amount_mismatch",
        "bad_signature",
        "credited",
        "replay",
        "external_id_mismatch",
    ]
    detail = (await client.get(f"/admin/v1/payments/{inv}", headers=AUTH)).json()
    assert detail["status"] == "paid" and detail["external_id"] == "9001"
    assert [n["outcome"] for n in detail["notifications"]][-3:] == [
        "credited",
        "replay",
        "external_id_mismatch",
    ]
    await ledger_ok(ctx)


def yk_notification(payment_id: str, event: str = "payment.succeeded") -> dict[str, Any]:
    # What anyone can post: the body claims success, the panel asks YooKassa itself.
    return {
        "type": "notification",
        "event": event,
        "object": {
            "id": payment_id,
            "status": "succeeded",
            "paid": True,
            "amount": {"value": "909.10", "currency": "RUB"},
        },
    }


async def test_yookassa_payment_confirmed_by_its_id(
    client: httpx.AsyncClient,
    api_invoice: Any,
    make_user: MakeUser,
    ctx: AppContext,
    yookassa: FastAPI,
    api: Api,
) -> None:
    user = await make_user()
    body = await api_invoice(user.key, "yookassa", "10")
    assert body["pay_url"].startswith("https://checkout.example/")
    (external_id,) = yookassa.state.payments
    assert yookassa.state.payments[external_id]["metadata"] == {"payment_id": str(body["payment"])}
    url = "/payments/yookassa/notify"

    # Forged: YooKassa says the payment is still pending.
    assert (await client.post(url, json=yk_notification(external_id))).status_code == 400
    # Unknown payment id.
    assert (await client.post(url, json=yk_notification("2f9a-unknown"))).status_code == 400
    # Garbage.
    assert (await client.post(url, content=b"not json")).status_code == 400
    # Events other than success are acknowledged and change nothing.
    assert (
        await client.post(url, json=yk_notification(external_id, "payment.waiting_for_capture"))
    ).status_code == 200
    # YooKassa down: 503, so that it notifies again later.
    succeed(yookassa, external_id)
    yookassa.state.up = False
    assert (await client.post(url, json=yk_notification(external_id))).status_code == 503
    assert await deposits(ctx, user.user_id) == []

    yookassa.state.up = True
    assert (await client.post(url, json=yk_notification(external_id))).status_code == 200
    assert (await client.post(url, json=yk_notification(external_id))).status_code == 200
    assert await deposits(ctx, user.user_id) == [Decimal("10")]
    assert await api(user.key, "balance") == {"balance": "10.00000", "currency": "USD"}
    assert await outcomes(ctx) == [
        "unconfirmed",
        "unknown_payment",
        "malformed",
        "ignored",
        "unavailable",
        "credited",
        "replay",
    ]
    await ledger_ok(ctx)


@pytest.mark.parametrize(
    ("changes", "outcome"),
    [
        ({"amount": {"value": "9.10", "currency": "RUB"}}, "amount_mismatch"),
        ({"amount": {"value": "909.10", "currency": "USD"}}, "currency_mismatch"),
        ({"metadata": {"payment_id": "12345"}}, "unconfirmed"),
    ],
)
async def test_yookassa_mismatches_credit_nothing(
    client: httpx.AsyncClient,
    api_invoice: Any,
    make_user: MakeUser,
    ctx: AppContext,
    yookassa: FastAPI,
    changes: dict[str, Any],
    outcome: str,
) -> None:
    user = await make_user()
    await api_invoice(user.key, "yookassa", "10")
    (external_id,) = yookassa.state.payments
    succeed(yookassa, external_id, **changes)
    response = await client.post("/payments/yookassa/notify", json=yk_notification(external_id))
    assert response.status_code == 400
    assert await deposits(ctx, user.user_id) == []
    assert await outcomes(ctx) == [outcome]


async def test_concurrent_notifications_credit_once(
    client: httpx.AsyncClient, api_invoice: Any, make_user: MakeUser, ctx: AppContext
) -> None:
    import asyncio

    user = await make_user()
    inv = (await api_invoice(user.key, "freekassa", "3"))["payment"]
    fields = freekassa_fields(inv, "272.73")
    answers = await asyncio.gather(
        *(client.post("/payments/freekassa/notify", data=fields) for _ in range(10))
    )
    assert {a.text for a in answers} == {"YES"}
    assert await deposits(ctx, user.user_id) == [Decimal("3")]
    async with ctx.db.session() as session:
        credited = await session.scalar(
            select(func.count()).where(PaymentNotification.outcome == "credited")
        )
    assert credited == 1
    await ledger_ok(ctx)


def random_fields(total_bytes: int, width: int = 1500) -> dict[str, str]:
    """Random form fields adding up to about `total_bytes`."""
    count = total_bytes // width
    return {
        f"f{i}_{secrets.token_hex(4)}": secrets.token_urlsafe(width)[:width] for i in range(count)
    }


async def stored_payloads(ctx: AppContext) -> list[tuple[str, dict[str, Any]]]:
    async with ctx.db.session() as session:
        rows = await session.execute(
            select(PaymentNotification.outcome, PaymentNotification.payload).order_by(
                PaymentNotification.id
            )
        )
        return [(outcome, payload) for outcome, payload in rows.all()]


async def test_refused_notifications_are_stored_bounded_accepted_ones_whole(
    client: httpx.AsyncClient, api_invoice: Any, make_user: MakeUser, ctx: AppContext
) -> None:
    user = await make_user()
    inv = (await api_invoice(user.key, "robokassa", "10"))["payment"]
    url = "/payments/robokassa/result"
    junk = random_fields(240_000)
    forged = {**robokassa_fields(inv, "909.10", password="guess"), **junk}
    assert (await client.post(url, data=forged)).text == "rejected: bad_signature"
    extra = {"note": "x" * 6000}  # an accepted notification is kept as it came
    good = {**robokassa_fields(inv, "909.10"), **extra}
    assert (await client.post(url, data=good)).text == f"OK{inv}"
    yk = {"type": "notification", "event": "payment.succeeded", "object": {"id": "nope"}}
    yk_body = {**yk, **random_fields(100_000)}
    assert (await client.post("/payments/yookassa/notify", json=yk_body)).status_code == 400

    (o1, refused), (o2, accepted), (o3, yk_refused) = await stored_payloads(ctx)
    assert (o1, o2, o3) == ("bad_signature", "credited", "unknown_payment")
    assert accepted == good
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = [(refused, forged), (yk_refused, yk_body)]
    for payload, source in pairs:
        assert len(json.dumps(payload).encode()) <= 4096
        marker = payload.pop("_truncated")
        size = len(json.dumps(source, ensure_ascii=False).encode())
        assert marker == {"bytes": size, "fields": len(source), "kept": len(payload)}
        # The leading fields, cut short (JSONB keeps its own key order).
        assert set(payload) == set(list(source)[: len(payload)])
        for key, value in payload.items():
            text = source[key] if isinstance(source[key], str) else json.dumps(source[key])
            assert value == text[:256]
    assert {"OutSum", "InvId", "SignatureValue"} <= set(refused)
    assert await deposits(ctx, user.user_id) == [Decimal("10")]
    metrics = (await client.get("/metrics", headers=AUTH)).text
    assert (
        'smm_payment_notifications_truncated_total{gateway="robokassa",outcome="bad_signature"}'
        in metrics
    )


async def test_notifications_are_rate_limited_per_ip_in_the_gateway_shape(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    ctx.settings.rate_limit_notify_per_ip = 3
    url = "/payments/robokassa/result"
    answers = [
        (await client.post(url, data=robokassa_fields(7, "1.00", password="guess"))).status_code
        for _ in range(4)
    ]
    assert answers == [400, 400, 400, 429]
    limited = await client.post(url, data=robokassa_fields(7, "1.00"))
    assert (limited.status_code, limited.text) == (429, "Too many requests, try again later")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    yk = await client.post("/payments/yookassa/notify", json={"type": "notification"})
    assert (yk.status_code, yk.json()) == (429, {"error": "Too many requests, try again later"})
    assert await outcomes(ctx) == ["bad_signature"] * 3  # nothing stored past the limit
    # The API v2 limits are counted apart.
    assert (await client.post("/api/v2", data={"key": "k", "action": "balance"})).json() == {
        "error": "Invalid API key"
    }


async def test_a_refused_yookassa_invoice_is_failed_not_pending(
    client: httpx.AsyncClient,
    api_invoice: Any,
    make_customer: MakeCustomer,
    ctx: AppContext,
    yookassa: FastAPI,
) -> None:
    """YooKassa refuses to create the payment: the customer is told the gateway is not
    available and the invoice shows as failed, never as a pending payment to pay."""
    customer = await make_customer()
    yookassa.state.up = False
    assert await api_invoice(customer.key, "yookassa", "10") == {
        "error": "Payment gateway is not available"
    }
    refused = await client.post(
        "/client/v1/deposits", headers=customer.auth, json={"gateway": "yookassa", "amount": "7"}
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"] == "Payment gateway is not available"
    listed = (await client.get("/client/v1/deposits", headers=customer.auth)).json()
    assert [(d["amount"], d["status"], d["pay_url"]) for d in listed] == [
        ("636.37", "failed", None),
        ("909.10", "failed", None),
    ]
    pending = await client.get("/admin/v1/payments?status=pending", headers=AUTH)
    assert pending.status_code == 200 and pending.json() == []
    failed = await client.get("/admin/v1/payments?status=failed", headers=AUTH)
    assert [p["status"] for p in failed.json()] == ["failed", "failed"]
    # Back up: the next invoice is created and pending, as usual.
    yookassa.state.up = True
    body = await api_invoice(customer.key, "yookassa", "10")
    assert body["pay_url"].startswith("https://checkout.example/")
    listed = (await client.get("/client/v1/deposits", headers=customer.auth)).json()
    assert [d["status"] for d in listed] == ["pending", "failed", "failed"]
    assert await deposits(ctx, customer.user_id) == []


async def test_a_gateway_currency_without_a_rate_makes_no_invoice(
    api_invoice: Any, make_user: MakeUser, ctx: AppContext
) -> None:
    ctx.settings.currency_rates = {}
    user = await make_user()
    assert await api_invoice(user.key, "robokassa", "10") == {"error": "No conversion rate for RUB"}
    async with ctx.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(Payment)) == 0


async def test_configured_gateways_without_a_rate_are_named_with_the_fix(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    settings = ctx.settings
    settings.currency_rates = {}
    async with ctx.db.session() as session:
        problems = await payments.unpriced_gateways(session, settings)
    fix = (
        "has no conversion rate into USD: set CURRENCY_RATES (USD per unit, e.g. "
        """CURRENCY_RATES='{"RUB": "0.011"}') or PUT /admin/v1/currencies/RUB"""
    )
    assert problems == [
        f"payment gateway {gateway} takes RUB, which {fix}"
        for gateway in ("robokassa", "freekassa", "yookassa")
    ]
    # A rate set by the operator counts as well as one in the settings.
    put = await client.put("/admin/v1/currencies/RUB", headers=AUTH, json={"rate": "0.011"})
    assert put.status_code == 200, put.text
    async with ctx.db.session() as session:
        assert await payments.unpriced_gateways(session, settings) == []
    # A gateway in the panel's own currency needs no rate; an unconfigured one is not asked.
    await client.delete("/admin/v1/currencies/RUB", headers=AUTH)
    settings.robokassa_currency, settings.freekassa_merchant_id = "USD", None
    settings.yookassa_currency = "usd"
    async with ctx.db.session() as session:
        assert await payments.unpriced_gateways(session, settings) == []
