"""The role matrix on the operator API: every route of /admin/v1 declares the one permission
it needs (read from the published route table, so a new route without one fails here),
every role is let through exactly where the matrix says and refused with 403 problem JSON
naming the permission everywhere else; and the stories behind the roles: a support agent
refused a top-up that finance may make, the support refund limit set by the owner, credit
only with `balances:adjust`, staff management for the owner alone."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from app.audit.models import AuditEntry
from app.context import AppContext
from app.ledger.models import LedgerEntry
from app.mail.service import Mailer
from app.staff.roles import MATRIX, PERMISSIONS, ROLES
from app.tickets import service as tickets
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.env import AUTH
from tests.support.staff import Staff, make_staff

ABSENT = "999999"  # an id no row has: allowed calls end in 404/422, never change anything


def declared_permissions(app: FastAPI) -> dict[tuple[str, str], list[list[str]]]:
    """(method, path) → the scopes of each security requirement, for every operation the
    app publishes under /admin/v1 (and the Prometheus scrape, guarded alike)."""
    found: dict[tuple[str, str], list[list[str]]] = {}
    for path, operations in app.openapi()["paths"].items():
        if path.startswith("/admin/v1") or path == "/metrics":
            for method, operation in operations.items():
                requirements = operation.get("security", [])
                found[(method.upper(), path)] = [
                    scopes for requirement in requirements for scopes in requirement.values()
                ]
    return found


def permission_of(scopes: list[list[str]]) -> str:
    assert len(scopes) == 1 and len(scopes[0]) == 1, scopes
    return scopes[0][0]


def test_every_admin_route_declares_one_known_permission(app: FastAPI) -> None:
    declared = declared_permissions(app)
    assert len(declared) >= 100
    undeclared = [route for route, scopes in declared.items() if scopes == []]
    assert undeclared == []
    for route, scopes in declared.items():
        assert permission_of(scopes) in PERMISSIONS, route
    # The matrix names nothing unknown, and the owner holds every permission.
    assert MATRIX["owner"] == frozenset(PERMISSIONS)
    assert set(MATRIX) == set(ROLES)


def test_the_readme_shows_the_matrix_as_the_code_has_it() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = re.findall(r"^\| `([a-z]+:[a-z]+)` \| (.+?) \|((?: [✓ ]? \|)+)$", readme, re.M)
    shown = {
        permission: (allows, tuple(cell.strip() == "✓" for cell in cells.split("|")[:-1]))
        for permission, allows, cells in rows
    }
    assert shown == {
        permission: (allows, tuple(permission in MATRIX[role] for role in ROLES))
        for permission, allows in PERMISSIONS.items()
    }


async def test_each_role_passes_exactly_where_the_matrix_says(
    app: FastAPI, client: httpx.AsyncClient, ctx: AppContext
) -> None:
    members = [await make_staff(ctx, role) for role in ROLES]
    for (method, template), scopes in sorted(declared_permissions(app).items()):
        permission = permission_of(scopes)
        path = re.sub(r"\{[^}]+\}", ABSENT, template)
        for member in members:
            response = await client.request(method, path, headers=member.auth, json={})
            if permission in MATRIX[member.role]:
                assert response.status_code not in (401, 403), (member.role, method, path)
                continue
            assert response.status_code == 403, (member.role, method, path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json() == {
                "type": "/errors/permission-denied",
                "title": "Forbidden",
                "status": 403,
                "detail": f"Your role ({member.role}) does not have the permission {permission}",
                "permission": permission,
            }


async def test_an_unknown_or_revoked_staff_token_is_401(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    owner = await make_staff(ctx, "owner")
    assert (await client.get("/admin/v1/staff", headers=owner.auth)).status_code == 200
    forged = {"Authorization": f"Bearer {owner.token[:-2]}xx"}
    assert (await client.get("/admin/v1/staff", headers=forged)).status_code == 401
    (token,) = (await client.get(f"/admin/v1/staff/{owner.id}/tokens", headers=AUTH)).json()
    gone = await client.delete(f"/admin/v1/staff/{owner.id}/tokens/{token['id']}", headers=AUTH)
    assert gone.status_code == 204
    refused = await client.get("/admin/v1/staff", headers=owner.auth)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"


async def audit_count(ctx: AppContext) -> int:
    async with ctx.db.session() as session:
        return int(await session.scalar(select(func.count(AuditEntry.id))) or 0)


async def test_a_support_agent_is_refused_a_top_up_that_finance_makes(
    client: httpx.AsyncClient, ctx: AppContext, make_user: MakeUser, api: Api
) -> None:
    customer = await make_user("10")
    support = await make_staff(ctx, "support", "sam@staff.example")
    finance = await make_staff(ctx, "finance", "fay@staff.example")
    url = f"/admin/v1/users/{customer.user_id}/topup"
    audited_before = await audit_count(ctx)

    refused = await client.post(url, headers=support.auth, json={"amount": "25"})
    assert refused.status_code == 403
    assert refused.json()["permission"] == "balances:topup"
    assert refused.json()["detail"] == (
        "Your role (support) does not have the permission balances:topup"
    )
    assert await api(customer.key, "balance") == {"balance": "10.00000", "currency": "USD"}
    assert await audit_count(ctx) == audited_before

    done = await client.post(url, headers=finance.auth, json={"amount": "25"})
    assert done.status_code == 200, done.text
    assert await api(customer.key, "balance") == {"balance": "35.00000", "currency": "USD"}
    async with ctx.db.session() as session:
        entry = await session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()))
        deposit = await session.scalar(
            select(LedgerEntry)
            .where(LedgerEntry.user_id == customer.user_id)
            .order_by(LedgerEntry.id.desc())
        )
    assert entry is not None and deposit is not None
    assert (entry.action, entry.actor, entry.staff_id) == (
        "user.topup",
        "fay@staff.example",
        finance.id,
    )
    assert (deposit.kind, deposit.amount, deposit.operator) == (
        "deposit",
        Decimal("25.00000000"),
        "fay@staff.example",
    )


async def order_under_review(
    ctx: AppContext, api: Api, make_user: MakeUser, make_service: MakeService
) -> tuple[int, int]:
    """An order of 1000 at 0.90 (charged 0.90000) under review by a ticket: (ticket, order)."""
    customer = await make_user("10")
    service = await make_service()
    order = order_id_of(
        await api(customer.key, "add", service=service, link="https://x.com/a", quantity=1000)
    )
    async with ctx.db.transaction() as session:
        ticket = await tickets.open_ticket(
            session,
            tickets.Notify(Mailer(ctx.db, "console", "panel"), None),
            customer.user_id,
            subject="Not delivered",
            category="order",
            message="Please look",
            order_ids=[order],
        )
    return ticket.id, order


async def resolve(
    client: httpx.AsyncClient, who: Staff | None, ticket: int, order: int, amount: str
) -> httpx.Response:
    return await client.post(
        f"/admin/v1/tickets/{ticket}/resolve",
        headers=who.auth if who else AUTH,
        json={"order_id": order, "action": "refund", "amount": amount},
    )


async def refunds_of(ctx: AppContext, order: int) -> list[tuple[Decimal, str | None]]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(LedgerEntry).where(LedgerEntry.order_id == order, LedgerEntry.kind == "refund")
        )
        return [(r.amount, r.operator) for r in rows]


async def test_support_refunds_on_a_review_up_to_the_limit_the_owner_sets(
    client: httpx.AsyncClient,
    ctx: AppContext,
    api: Api,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    support = await make_staff(ctx, "support", "sam@staff.example")
    owner = await make_staff(ctx, "owner", "olga@staff.example")
    ticket, order = await order_under_review(ctx, api, make_user, make_service)

    # No limit set yet: a support agent may refund nothing.
    refused = await resolve(client, support, ticket, order, "0.45")
    assert refused.status_code == 403, refused.text
    assert refused.json()["permission"] == "reviews:refund"
    assert refused.json()["detail"] == (
        "A refund above 0 on a review needs the permission reviews:refund"
    )
    assert await refunds_of(ctx, order) == []

    # Only the owner sets the limit.
    limit = {"support_refund_limit": "0.5"}
    denied = await client.put("/admin/v1/staff/settings", headers=support.auth, json=limit)
    assert (denied.status_code, denied.json()["permission"]) == (403, "staff:write")
    set_limit = await client.put("/admin/v1/staff/settings", headers=owner.auth, json=limit)
    assert set_limit.json()["support_refund_limit"] == "0.50000000"

    above = await resolve(client, support, ticket, order, "0.51")
    assert above.status_code == 403
    assert above.json()["detail"] == (
        "A refund above 0.50000000 on a review needs the permission reviews:refund"
    )
    done = await resolve(client, support, ticket, order, "0.45")
    assert done.status_code == 200, done.text
    assert done.json()["resolution"]["operator"] == "sam@staff.example"
    assert await refunds_of(ctx, order) == [(Decimal("0.45000000"), None)]
    async with ctx.db.session() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "ticket.resolve")
        )
    assert entry is not None and (entry.actor, entry.staff_id) == ("sam@staff.example", support.id)


async def test_a_manager_refunds_above_the_support_limit(
    client: httpx.AsyncClient,
    ctx: AppContext,
    api: Api,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    manager = await make_staff(ctx, "manager")
    ticket, order = await order_under_review(ctx, api, make_user, make_service)
    done = await resolve(client, manager, ticket, order, "0.90")
    assert done.status_code == 200, done.text
    assert await refunds_of(ctx, order) == [(Decimal("0.90000000"), None)]


async def test_credit_needs_balances_adjust_beside_users_write(
    client: httpx.AsyncClient, ctx: AppContext, make_user: MakeUser
) -> None:
    manager = await make_staff(ctx, "manager")
    customer = await make_user("0")
    url = f"/admin/v1/users/{customer.user_id}"
    renamed = await client.patch(url, headers=manager.auth, json={"name": "Reseller Ltd"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Reseller Ltd"
    credit = await client.patch(url, headers=manager.auth, json={"credit_limit": "100"})
    assert credit.status_code == 403
    assert credit.json()["permission"] == "balances:adjust"
    shown = (await client.get(url, headers=manager.auth)).json()
    assert shown["credit_limit"] == "0.00000000"


@pytest.mark.parametrize("role", ["manager", "support", "finance"])
async def test_only_the_owner_manages_staff(
    client: httpx.AsyncClient, ctx: AppContext, role: str
) -> None:
    member = await make_staff(ctx, role)
    body: dict[str, Any] = {"email": "new@staff.example", "role": "owner"}
    refused = await client.post("/admin/v1/staff", headers=member.auth, json=body)
    assert (refused.status_code, refused.json()["permission"]) == (403, "staff:write")
    listed = await client.get("/admin/v1/staff", headers=member.auth)
    assert (listed.status_code, listed.json()["permission"]) == (403, "staff:read")
