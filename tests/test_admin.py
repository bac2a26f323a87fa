"""The operator API: auth on every route, users, money, catalog, orders, audit, providers."""

from __future__ import annotations

import re
from decimal import Decimal

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.context import AppContext
from app.ledger.models import LedgerEntry
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok
from tests.support.upstream import run_jobs, sandbox

LINK = "https://instagram.com/admin"


def admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every operation the app serves under /admin/v1 (from its route table, as published)."""
    routes: list[tuple[str, str]] = []
    for path, operations in app.openapi()["paths"].items():
        if path.startswith("/admin/v1"):
            concrete = re.sub(r"\{[^}]+\}", "1", path)
            routes.extend((method.upper(), concrete) for method in operations)
    return routes


async def test_every_admin_route_requires_the_token(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    routes = admin_routes(app)
    assert len(routes) >= 30
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
            response = await client.request(method, path, headers=headers, json={})
            assert response.status_code == 401, (method, path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["status"] == 401


async def test_create_user_key_rotate_and_topup(
    client: httpx.AsyncClient, api: Api, ctx: AppContext
) -> None:
    created = await client.post(
        "/admin/v1/users",
        headers=AUTH,
        json={"email": "r@example.com", "initial_balance": "25.5"},
    )
    assert created.status_code == 201
    body = created.json()
    user_id, key = body["id"], body["api_key"]
    assert await api(key, "balance") == {"balance": "25.50000", "currency": "USD"}
    duplicate = await client.post("/admin/v1/users", headers=AUTH, json={"email": "r@example.com"})
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == "application/problem+json"

    rotated = (await client.post(f"/admin/v1/users/{user_id}/keys/rotate", headers=AUTH)).json()
    assert await api(key, "balance") == {"error": "Invalid API key"}
    assert await api(rotated["api_key"], "balance") == {"balance": "25.50000", "currency": "USD"}

    for _ in range(2):
        topup = await client.post(
            f"/admin/v1/users/{user_id}/topup",
            headers=AUTH,
            json={"amount": "10", "payment_ref": "bank-1"},
        )
        assert topup.status_code == 200
    assert topup.json() == {"user_id": user_id, "balance": "35.50000000", "duplicate": True}
    assert await api(rotated["api_key"], "balance") == {"balance": "35.50000", "currency": "USD"}

    refused = await client.post(
        f"/admin/v1/users/{user_id}/adjust", headers=AUTH, json={"amount": "-40", "reason": "x"}
    )
    assert refused.status_code == 409
    adjusted = await client.post(
        f"/admin/v1/users/{user_id}/adjust", headers=AUTH, json={"amount": "-0.5", "reason": "fix"}
    )
    assert adjusted.json()["balance"] == "35.00000000"
    bad = await client.post(f"/admin/v1/users/{user_id}/topup", headers=AUTH, json={"amount": "-1"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"
    await ledger_ok(ctx)


async def test_block_cancels_refunds_once_and_forfeits(
    client: httpx.AsyncClient,
    api: Api,
    ctx: AppContext,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    # 0.90, pending
    order_id = order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=1000))
    response = await client.post(
        f"/admin/v1/users/{user.user_id}/block", headers=AUTH, json={"reason": "chargeback"}
    )
    assert response.json() == {
        "user_id": user.user_id,
        "withdrawn": [order_id],
        "cancel_requested": [],
        "forfeited": "10.00000000",
    }
    assert await api(user.key, "balance") == {"error": "Invalid API key"}
    async with ctx.db.session() as session:
        entries = list(
            await session.execute(
                select(LedgerEntry.kind, LedgerEntry.amount).order_by(LedgerEntry.id)
            )
        )
    assert [tuple(e) for e in entries] == [
        ("deposit", Decimal("10")),
        ("charge", Decimal("-0.9")),
        ("refund", Decimal("0.9")),
        ("forfeit", Decimal("-10")),
    ]
    user_row = (await client.get(f"/admin/v1/users/{user.user_id}", headers=AUTH)).json()
    assert user_row["status"] == "blocked" and Decimal(user_row["balance"]) == 0
    await ledger_ok(ctx)


async def test_catalog_crud_is_what_resellers_see(
    client: httpx.AsyncClient, api: Api, make_user: MakeUser
) -> None:
    user = await make_user(balance="10")
    category = (
        await client.post("/admin/v1/categories", headers=AUTH, json={"name": "TikTok"})
    ).json()
    created = await client.post(
        "/admin/v1/services",
        headers=AUTH,
        json={
            "category_id": category["id"],
            "name": "TikTok Views",
            "rate": "0.05",
            "min_quantity": 100,
            "max_quantity": 100000,
        },
    )
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    listed = await api(user.key, "services")
    assert [(s["service"], s["name"], s["rate"]) for s in listed] == [(sid, "TikTok Views", "0.05")]
    await client.patch(f"/admin/v1/services/{sid}", headers=AUTH, json={"rate": "0.07"})
    assert (await api(user.key, "services"))[0]["rate"] == "0.07"
    # A custom rate for this user shows in `services` and in the charge.
    await client.put(
        f"/admin/v1/users/{user.user_id}/rates/{sid}", headers=AUTH, json={"rate": "0.04"}
    )
    assert (await api(user.key, "services"))[0]["rate"] == "0.04"
    order_id = order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=1000))
    assert (await api(user.key, "status", order=order_id))["charge"] == "0.04000"
    bad = await client.post(
        "/admin/v1/services",
        headers=AUTH,
        json={
            "category_id": category["id"],
            "name": "x",
            "rate": "1",
            "min_quantity": 10,
            "max_quantity": 5,
            "type": "Nope",
        },
    )
    assert bad.status_code == 422
    assert (
        await client.delete(f"/admin/v1/categories/{category['id']}", headers=AUTH)
    ).status_code == 409
    await client.delete(f"/admin/v1/services/{sid}", headers=AUTH)
    assert await api(user.key, "services") == []
    assert await api(user.key, "add", service=sid, link=LINK + "2", quantity=1000) == {
        "error": "Incorrect service ID"
    }
    # The existing order still answers.
    assert (await api(user.key, "status", order=order_id))["status"] == "Pending"


async def test_operator_partial_refunds_once_and_is_audited(
    client: httpx.AsyncClient,
    api: Api,
    ctx: AppContext,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    user = await make_user(balance="10")
    sid = await make_service()
    # 0.27810
    order_id = order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=309))
    statuses = []
    for _ in range(2):
        response = await client.post(
            f"/admin/v1/orders/{order_id}/status",
            headers=AUTH,
            json={"status": "Partial", "start_count": 10, "remains": 157},
        )
        statuses.append(response.status_code)
        if response.status_code == 200:
            detail = response.json()
    assert statuses == [200, 409]  # a finished order does not move, and says so
    assert (detail["status"], detail["remains"], detail["refunded"]) == (
        "Partial",
        157,
        "0.14130000",
    )
    assert [e["kind"] for e in detail["ledger"]] == ["charge", "refund"]
    assert await api(user.key, "balance") == {"balance": "9.86320", "currency": "USD"}
    audit = (await client.get("/admin/v1/audit?entity=order", headers=AUTH)).json()
    assert len(audit) == 1 and audit[0]["action"] == "order.status"
    listed = (await client.get("/admin/v1/orders?status=Partial", headers=AUTH)).json()
    assert [o["id"] for o in listed] == [order_id]
    check = (await client.get("/admin/v1/ledger/check", headers=AUTH)).json()
    assert check["ok"] is True and check["checked_orders"] == 1


async def test_every_admin_mutation_is_audited(client: httpx.AsyncClient, ctx: AppContext) -> None:
    user = (await client.post("/admin/v1/users", headers=AUTH, json={"email": "a@b.c"})).json()
    uid = user["id"]
    category = (await client.post("/admin/v1/categories", headers=AUTH, json={"name": "C"})).json()
    await client.patch(f"/admin/v1/categories/{category['id']}", headers=AUTH, json={"position": 2})
    await client.post(f"/admin/v1/users/{uid}/topup", headers=AUTH, json={"amount": "1"})
    await client.post(f"/admin/v1/users/{uid}/keys", headers=AUTH)
    await client.post(f"/admin/v1/users/{uid}/block", headers=AUTH, json={"reason": "r"})
    await client.post(f"/admin/v1/users/{uid}/unblock", headers=AUTH)
    await client.delete(f"/admin/v1/categories/{category['id']}", headers=AUTH)
    async with ctx.db.session() as session:
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
    assert actions == [
        "user.create",
        "category.create",
        "category.update",
        "user.topup",
        "user.key_issue",
        "user.block",
        "user.unblock",
        "category.delete",
    ]
    # Keys never reach the audit log.
    async with ctx.db.session() as session:
        rows = list(await session.scalars(select(AuditEntry)))
    assert user["api_key"] not in str([(r.before, r.after) for r in rows])


async def test_openapi_documents_every_operation_with_examples(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    text = str(spec)
    assert "examples" in str(spec["paths"]["/api/v2"])
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("summary"), (method, path)
            if path.startswith("/admin/v1") and method in ("post", "put", "patch"):
                body = operation.get("requestBody")
                if body and "application/json" not in body["content"]:
                    # An upload (the storefront's logo): the image types it takes, as bytes.
                    kinds = body["content"]
                    assert kinds and all(k.startswith("image/") for k in kinds), (method, path)
                    binary = {"type": "string", "format": "binary"}
                    assert all(k["schema"] == binary for k in kinds.values()), (method, path)
                elif body:
                    ref = body["content"]["application/json"]["schema"].get("$ref", "")
                    name = ref.rsplit("/", 1)[-1]
                    assert "examples" in schemas[name], (method, path)
    assert "Incorrect order ID" in text


async def test_providers_import_and_review_queue(
    client: httpx.AsyncClient, api: Api, ctx: AppContext, settings: Settings, make_user: MakeUser
) -> None:
    config = SandboxConfig(
        services=[
            SandboxService(
                1,
                "Followers",
                rate=Decimal("0.40"),
                min=10,
                max=1000,
                category="IG",
                behaviour="http500",
            ),
            SandboxService(2, "Likes", rate=Decimal("0.10"), min=10, max=1000, category="IG"),
        ],
        seconds_to_start=0,
        seconds_to_complete=0,
        extensions=False,  # a standard provider: an unknown outcome goes to review
    )
    async with sandbox(config) as (url, app):
        created = await client.post(
            "/admin/v1/providers",
            headers=AUTH,
            json={"name": "Sandbox", "url": f"{url}/api/v2", "api_key": "sandbox-key"},
        )
        assert created.status_code == 201
        provider = created.json()
        assert "api_key" not in provider
        pid = provider["id"]
        balance = await client.get(f"/admin/v1/providers/{pid}/balance", headers=AUTH)
        assert balance.json() == {"provider_id": pid, "balance": "1000.00000", "currency": "USD"}
        imported = await client.post(
            f"/admin/v1/providers/{pid}/import",
            headers=AUTH,
            json={"multiplier": "2", "fixed": "0.01"},
        )
        assert imported.json() == {"created": 2, "updated": 0, "disabled": 0}
        user = await make_user(balance="10")
        offered = {s["name"]: s for s in await api(user.key, "services")}
        assert offered["Followers"]["rate"] == "0.81" and offered["Likes"]["rate"] == "0.21"
        # Likes vanish upstream: refreshed import disables ours.
        app.state.sandbox.services.pop(2)
        again = await client.post(f"/admin/v1/providers/{pid}/import", headers=AUTH, json={})
        assert again.json() == {"created": 0, "updated": 1, "disabled": 1}
        assert [s["name"] for s in await api(user.key, "services")] == ["Followers"]
        # An order with an unknown outcome lands in the review queue.
        sid = offered["Followers"]["service"]
        order_id = order_id_of(await api(user.key, "add", service=sid, link=LINK, quantity=100))
        await run_jobs(settings, ctx)
        queue = (await client.get("/admin/v1/review", headers=AUTH)).json()
        assert [o["id"] for o in queue] == [order_id]
        marked = await client.post(
            f"/admin/v1/review/{order_id}/mark-sent",
            headers=AUTH,
            json={"provider_order_id": "77"},
        )
        assert marked.json() == {"order_id": order_id, "action": "mark_sent"}
        assert (await api(user.key, "status", order=order_id))["status"] == "In progress"
        again_marked = await client.post(f"/admin/v1/review/{order_id}/cancel", headers=AUTH)
        assert again_marked.status_code == 409
        detail = (await client.get(f"/admin/v1/orders/{order_id}", headers=AUTH)).json()
        assert [e["outcome"] for e in detail["upstream_history"]] == [
            "attempt",
            "ProviderUnknownOutcome",
        ]


@pytest.mark.parametrize("path", ["/admin/v1/users/999", "/admin/v1/orders/999"])
async def test_missing_things_are_404_problems(
    client: httpx.AsyncClient, ctx: AppContext, path: str
) -> None:
    # With `ctx`, every table is emptied first: no user or order exists.
    response = await client.get(path, headers=AUTH)
    assert response.status_code == 404
    assert response.json()["title"] == "Not Found"
