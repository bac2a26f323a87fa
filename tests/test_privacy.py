"""Export, erasure of personal data, purge after retention, activity-log retention."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select, text

from app.accounts.models import User
from app.alerts.models import Alert
from app.audit.models import AuditEntry
from app.context import AppContext
from app.db import utcnow
from app.ledger.models import LedgerEntry
from app.orders.models import Order, UpstreamEvent
from app.payments.models import Payment, PaymentNotification
from app.providers.models import CatalogChange
from app.providers.service import create_provider
from app.settings import Settings
from tests.support.api import Api, MakeService, order_id_of
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok
from tests.support.upstream import call_job


async def reseller(client: httpx.AsyncClient, email: str, balance: str = "10") -> dict[str, Any]:
    response = await client.post(
        "/admin/v1/users",
        headers=AUTH,
        json={"email": email, "name": "Jane Roe", "initial_balance": balance},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def count(ctx: AppContext, model: Any, *where: Any) -> int:
    async with ctx.db.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_export_holds_everything_about_the_user_and_no_secrets(
    client: httpx.AsyncClient, ctx: AppContext, api: Api, make_service: MakeService
) -> None:
    user = await reseller(client, "jane@example.com")
    service = await make_service(min_quantity=100)
    await api(user["api_key"], "add", service=service, link="https://x.com/jane", quantity=100)
    response = await client.get(f"/admin/v1/users/{user['id']}/export", headers=AUTH)
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    data = response.json()
    assert data["user"]["email"] == "jane@example.com" and data["user"]["name"] == "Jane Roe"
    assert [o["link"] for o in data["orders"]] == ["https://x.com/jane"]
    assert [(e["kind"], e["amount"]) for e in data["ledger"]] == [
        ("deposit", "10.00000000"),
        ("charge", "-0.09000000"),
    ]
    assert [a["action"] for a in data["audit_log"]] == ["user.create"]
    assert len(data["api_keys"]) == 1 and "key_hash" not in data["api_keys"][0]
    assert user["api_key"] not in response.text
    async with ctx.db.session() as session:
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions[-1] == "user.export"
    # Every table was emptied before the test: the next id is no one's.
    missing = user["id"] + 1
    assert (await client.get(f"/admin/v1/users/{missing}/export", headers=AUTH)).status_code == 404


async def test_erasure_removes_personal_fields_and_keeps_money_records(
    client: httpx.AsyncClient, ctx: AppContext, api: Api, make_service: MakeService
) -> None:
    user = await reseller(client, "jane@example.com")
    uid, key = user["id"], user["api_key"]
    service = await make_service(min_quantity=100)
    order_id = order_id_of(
        await api(key, "add", service=service, link="https://x.com/jane", quantity=100)
    )
    refused = await client.delete(f"/admin/v1/users/{uid}", headers=AUTH)
    assert refused.status_code == 409
    assert "active order" in refused.json()["detail"]
    await client.post(
        f"/admin/v1/orders/{order_id}/status",
        headers=AUTH,
        json={"status": "Completed", "remains": 0},
    )
    erased = await client.delete(f"/admin/v1/users/{uid}", headers=AUTH)
    assert erased.status_code == 200, erased.text
    assert erased.json()["orders_scrubbed"] == 1

    assert await api(key, "balance") == {"error": "Invalid API key"}
    shown = (await client.get(f"/admin/v1/users/{uid}", headers=AUTH)).json()
    assert (shown["email"], shown["name"], shown["referral_code"]) == (None, None, None)
    assert shown["deleted_at"] is not None
    assert Decimal(shown["balance"]) == Decimal("9.91")
    async with ctx.db.session() as session:
        order = await session.get(Order, order_id)
        assert order is not None
        assert (order.link, order.params, order.charge) == ("", {}, Decimal("0.09"))
        audit = list(await session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
    assert "jane@example.com" not in str([(a.before, a.after) for a in audit])
    assert "Jane Roe" not in str([(a.before, a.after) for a in audit])
    assert await count(ctx, LedgerEntry, LedgerEntry.user_id == uid) == 2
    # Nothing new can be attached to an erased user.
    assert (await client.post(f"/admin/v1/users/{uid}/keys", headers=AUTH)).status_code == 409
    topup = await client.post(f"/admin/v1/users/{uid}/topup", headers=AUTH, json={"amount": "1"})
    assert topup.status_code == 409
    assert (await client.delete(f"/admin/v1/users/{uid}", headers=AUTH)).status_code == 409
    await ledger_ok(ctx)


async def test_retention_job_purges_erased_users_after_a_year_only(
    client: httpx.AsyncClient,
    ctx: AppContext,
    settings: Settings,
    api: Api,
    make_service: MakeService,
) -> None:
    service = await make_service(min_quantity=100)
    referrer = await reseller(client, "ref@example.com", balance="0")
    old = (
        await client.post(
            "/admin/v1/users",
            headers=AUTH,
            json={
                "email": "old@example.com",
                "initial_balance": "10",
                "referral_code": referrer["referral_code"],
            },
        )
    ).json()
    recent = await reseller(client, "recent@example.com")
    keeper = await reseller(client, "keeper@example.com")
    for user in (old, recent, keeper):
        await api(user["api_key"], "add", service=service, link="https://x.com/a", quantity=100)
    async with ctx.db.transaction() as session:
        await session.execute(text("UPDATE orders SET status = 'Completed', remains = 0"))
        session.add(
            Payment(
                user_id=old["id"],
                gateway="robokassa",
                amount=Decimal("100"),
                currency="RUB",
                credit_amount=Decimal("1"),
            )
        )
    for user in (old, recent):
        assert (
            await client.delete(f"/admin/v1/users/{user['id']}", headers=AUTH)
        ).status_code == 200
    async with ctx.db.transaction() as session:
        await session.execute(
            text("UPDATE users SET deleted_at = now() - interval '366 days' WHERE id = :id"),
            {"id": old["id"]},
        )
        await session.execute(
            text("UPDATE users SET deleted_at = now() - interval '100 days' WHERE id = :id"),
            {"id": recent["id"]},
        )

    result = await call_job(settings, ctx, "enforce_retention")
    assert result["users_purged"] == 1
    async with ctx.db.session() as session:
        remaining = set(await session.scalars(select(User.id)))
    assert remaining == {referrer["id"], recent["id"], keeper["id"]}
    assert await count(ctx, Order, Order.user_id == old["id"]) == 0
    assert await count(ctx, LedgerEntry, LedgerEntry.user_id == old["id"]) == 0
    assert await count(ctx, Payment, Payment.user_id == old["id"]) == 0
    # The referrer keeps the reward they earned; it no longer points at the purged user.
    rewards = (await client.get("/admin/v1/referral-rewards", headers=AUTH)).json()
    assert [(r["referrer_id"], r["referred_id"]) for r in rewards] == [(referrer["id"], None)]
    assert await count(ctx, Order, Order.user_id == recent["id"]) == 1
    assert await api(keeper["api_key"], "balance") == {"balance": "9.91000", "currency": "USD"}
    await ledger_ok(ctx)


async def test_activity_logs_are_kept_one_year(
    client: httpx.AsyncClient, ctx: AppContext, settings: Settings
) -> None:
    await reseller(client, "a@example.com")
    await reseller(client, "b@example.com")
    year_ago = utcnow() - timedelta(days=366)
    async with ctx.db.transaction() as session:
        first_entry = await session.scalar(select(func.min(AuditEntry.id)))
        await session.execute(
            text("UPDATE audit_log SET created_at = :t WHERE id = :id"),
            {"t": year_ago, "id": first_entry},
        )
        session.add_all(
            [
                UpstreamEvent(order_id=1, action="add", outcome="sent", created_at=year_ago),
                UpstreamEvent(order_id=1, action="status", outcome="ok"),
                PaymentNotification(
                    gateway="robokassa", outcome="bad_signature", created_at=year_ago
                ),
                Alert(
                    kind="order_stuck",
                    subject="order",
                    subject_id=1,
                    message="m",
                    created_at=year_ago,
                ),
                Alert(kind="order_stuck", subject="order", subject_id=2, message="m"),
            ]
        )
        provider = await create_provider(
            session, secret=settings.secret_key, name="P", url="http://127.0.0.1:9/", api_key="k"
        )
        session.add(
            CatalogChange(
                provider_id=provider.id, provider_service_id="1", kind="new", created_at=year_ago
            )
        )
    result = await call_job(settings, ctx, "enforce_retention")
    assert result == {
        "users_purged": 0,
        "audit_log": 1,
        "upstream_events": 1,
        "payment_notifications": 1,
        "alerts": 1,
        "catalog_changes": 1,
        "tickets": 0,
    }
    assert await count(ctx, Alert) == 1
    assert await count(ctx, AuditEntry) == 1
    assert await count(ctx, UpstreamEvent) == 1
    assert await count(ctx, PaymentNotification) == 0
