"""The console's customers: found by email or id, each with their balance and ledger,
orders, tickets, sign-in and referrals; topped up, adjusted, given a discount and custom
rates, blocked with the balance forfeited and unblocked, helped with their sign-in,
exported and erased — each through the functions behind /admin/v1, in one transaction
with an audit entry naming the staff member, and only by the roles the matrix allows."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
from sqlalchemy import select

from app.accounts.models import User
from app.audit.models import AuditEntry
from app.catalog.models import UserRate
from app.context import AppContext
from app.ledger.models import LedgerEntry
from tests.support.api import MakeService, MakeUser
from tests.support.console import shown_text, signed_in, submit
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok


async def entries_of(ctx: AppContext, user_id: int) -> list[tuple[str, Decimal, str, str | None]]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(LedgerEntry).where(LedgerEntry.user_id == user_id).order_by(LedgerEntry.id)
        )
        return [(e.kind, e.amount, e.reason, e.operator) for e in rows]


async def audit_trail(ctx: AppContext) -> list[tuple[str, int | None, str, str | None]]:
    async with ctx.db.session() as session:
        rows = await session.scalars(select(AuditEntry).order_by(AuditEntry.id))
        return [(a.actor, a.staff_id, a.action, a.entity_id) for a in rows]


async def test_customers_are_found_by_email_or_id_and_exported_as_csv(
    client: httpx.AsyncClient, ctx: AppContext, make_user: MakeUser
) -> None:
    ann = await make_user("5", "ann@shop.example")
    await make_user("0", "bob@shop.example")
    formula = await make_user("0", "=cmd@shop.example")
    await signed_in(client, ctx, "manager")
    listed = await client.get("/web/admin/users?q=ANN@")
    assert listed.status_code == 200
    assert f'<tr id="user-{ann.user_id}">' in listed.text
    assert "bob@shop.example" not in listed.text
    by_id = await client.get(f"/web/admin/users?q={formula.user_id}")
    assert "=cmd@shop.example" in by_id.text and "ann@shop.example" not in by_id.text
    exported = await client.get("/web/admin/users?q=shop.example&format=csv")
    assert exported.headers["content-type"] == "text/csv; charset=utf-8"
    assert exported.headers["content-disposition"] == 'attachment; filename="customers.csv"'
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "ID,Email,Name,Status,Balance,Discount %,Created"
    assert [line.split(",")[1] for line in lines[1:]] == [
        "ann@shop.example",
        "bob@shop.example",
        "'=cmd@shop.example",  # a formula never reaches a spreadsheet as one
    ]


async def test_a_top_up_and_an_adjustment_go_through_the_ledger_naming_the_member(
    client: httpx.AsyncClient, ctx: AppContext, make_user: MakeUser
) -> None:
    user = await make_user("1")
    fay = await signed_in(client, ctx, "finance")
    page = f"/web/admin/users/{user.user_id}"
    done = await submit(
        client, page, f"{page}/topup", amount="25.5", reason="Bank transfer", payment_ref="b-1"
    )
    assert (done.status_code, done.headers["location"]) == (303, f"{page}?done=topup")
    shown = await client.get(done.headers["location"])
    assert shown_text(shown, "done") == "The balance is topped up."
    assert shown_text(shown, "user-balance") == "$26.50"
    again = await submit(client, page, f"{page}/topup", amount="25.5", payment_ref="b-1")
    assert again.headers["location"] == f"{page}?done=topup-duplicate"
    refused = await submit(client, page, f"{page}/topup", amount="0")
    assert refused.status_code == 422
    assert shown_text(refused, "error") == (
        "Enter an amount: a number with at most 8 decimals (above 0 for a top-up)."
    )
    too_much = await submit(client, page, f"{page}/adjust", amount="-30", reason="Chargeback")
    assert (too_much.status_code, shown_text(too_much, "error")) == (
        409,
        "Not enough funds on balance",
    )
    taken = await submit(client, page, f"{page}/adjust", amount="-6.5", reason="Chargeback")
    assert taken.headers["location"] == f"{page}?done=adjust"
    email = fay.staff.email
    assert await entries_of(ctx, user.user_id) == [
        ("deposit", Decimal("1.00000000"), "test deposit", None),
        ("deposit", Decimal("25.50000000"), "Bank transfer", email),
        ("adjustment", Decimal("-6.50000000"), "Chargeback", email),
    ]
    trail = [t for t in await audit_trail(ctx) if t[0] == email]
    assert trail == [
        (email, fay.staff.id, "user.topup", str(user.user_id)),
        (email, fay.staff.id, "user.adjust", str(user.user_id)),
    ]
    await ledger_ok(ctx)


async def test_a_support_agent_is_refused_a_top_up_by_the_console_and_the_api(
    client: httpx.AsyncClient, ctx: AppContext, make_user: MakeUser
) -> None:
    user = await make_user("0")
    agent = await signed_in(client, ctx, "support")
    page = await client.get(f"/web/admin/users/{user.user_id}")
    assert page.status_code == 403
    assert shown_text(page, "message") == (
        "Your role (support) does not have the permission users:read."
    )
    form = await client.get("/web/admin/")
    from tests.support.web import csrf_of

    posted = await client.post(
        f"/web/admin/users/{user.user_id}/topup",
        data={"csrf": csrf_of(form), "amount": "10", "reason": "x"},
    )
    assert posted.status_code == 403
    assert shown_text(posted, "message") == (
        "Your role (support) does not have the permission balances:topup."
    )
    api = await client.post(
        f"/admin/v1/users/{user.user_id}/topup", headers=agent.staff.auth, json={"amount": "10"}
    )
    assert api.status_code == 403
    assert api.json()["permission"] == "balances:topup"
    assert await entries_of(ctx, user.user_id) == []


async def test_discount_custom_rates_and_sign_in_help(
    client: httpx.AsyncClient, ctx: AppContext, make_user: MakeUser, make_service: MakeService
) -> None:
    user = await make_user("0")
    service_id = await make_service()
    manager = await signed_in(client, ctx, "manager")
    page = f"/web/admin/users/{user.user_id}"
    assert (
        await submit(client, page, f"{page}/discount", discount_percent="12.5")
    ).status_code == 303
    wrong = await submit(client, page, f"{page}/discount", discount_percent="120")
    assert (wrong.status_code, shown_text(wrong, "error")) == (
        422,
        "Enter a discount from 0 to 100 with at most 2 decimals.",
    )
    set_rate = await submit(client, page, f"{page}/rates", service_id=str(service_id), rate="0.5")
    assert set_rate.headers["location"] == f"{page}?done=rate"
    missing = await submit(client, page, f"{page}/rates", service_id="999999", rate="0.5")
    assert (missing.status_code, shown_text(missing, "error")) == (404, "Service not found")
    shown = await client.get(page)
    assert shown_text(shown, "user-discount") == "12.50 %"
    assert f'<tr id="rate-{service_id}">' in shown.text
    services = await client.get("/api/v2", params={"key": user.key, "action": "services"})
    assert services.json()[0]["rate"] == "0.50"
    removed = await submit(client, page, f"{page}/rates/{service_id}/remove")
    assert removed.headers["location"] == f"{page}?done=rate-removed"
    assert (await submit(client, page, f"{page}/2fa-reset")).status_code == 303
    assert (await submit(client, page, f"{page}/sessions/revoke")).status_code == 303
    async with ctx.db.session() as session:
        assert list(await session.scalars(select(UserRate))) == []
        row = await session.get(User, user.user_id)
        assert row is not None and row.discount_percent == Decimal("12.50")
    actions = [t[2] for t in await audit_trail(ctx) if t[0] == manager.staff.email]
    assert actions == [
        "user.update",
        "rate.set",
        "rate.delete",
        "user.2fa_reset",
        "user.sessions_revoke",
    ]


async def test_blocking_forfeits_the_balance_and_unblocking_keeps_it_forfeited(
    client: httpx.AsyncClient, ctx: AppContext, make_user: MakeUser
) -> None:
    user = await make_user("7.25")
    manager = await signed_in(client, ctx, "manager")
    page = f"/web/admin/users/{user.user_id}"
    unconfirmed = await submit(client, page, f"{page}/block", reason="Chargeback")
    assert (unconfirmed.status_code, shown_text(unconfirmed, "error")) == (
        422,
        "Tick the box to confirm: the balance is forfeited.",
    )
    done = await submit(client, page, f"{page}/block", reason="Chargeback", confirm="1")
    assert done.headers["location"] == f"{page}?done=blocked"
    shown = await client.get(done.headers["location"])
    assert shown_text(shown, "user-balance") == "$0.00"
    assert shown_text(shown, "user-status").startswith("blocked")
    balance = await client.get("/api/v2", params={"key": user.key, "action": "balance"})
    assert balance.json() == {"error": "Invalid API key"}
    assert (await submit(client, page, f"{page}/unblock")).headers["location"] == (
        f"{page}?done=unblocked"
    )
    assert await entries_of(ctx, user.user_id) == [
        ("deposit", Decimal("7.25000000"), "test deposit", None),
        ("forfeit", Decimal("-7.25000000"), "Forfeit on block: Chargeback", manager.staff.email),
    ]
    await ledger_ok(ctx)


async def test_the_privacy_export_and_the_erasure(
    client: httpx.AsyncClient, ctx: AppContext, make_user: MakeUser
) -> None:
    user = await make_user("3", "jane@shop.example")
    manager = await signed_in(client, ctx, "manager")
    page = f"/web/admin/users/{user.user_id}"
    exported = await submit(client, page, f"{page}/export")
    assert exported.headers["content-disposition"] == (
        f'attachment; filename="user-{user.user_id}.json"'
    )
    assert json.loads(exported.text)["user"]["email"] == "jane@shop.example"
    erased = await submit(client, page, f"{page}/erase", confirm="1")
    assert erased.headers["location"] == f"{page}?done=erased"
    api = await client.get(f"/admin/v1/users/{user.user_id}", headers=AUTH)
    assert api.json()["email"] is None and api.json()["balance"] == "3.00000000"
    actions = [t[2] for t in await audit_trail(ctx) if t[0] == manager.staff.email]
    assert actions == ["user.export", "user.erase"]


async def test_a_missing_customer_or_a_malformed_address_is_a_404_page(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    await signed_in(client, ctx, "owner")
    missing = await client.get("/web/admin/users/424242")
    assert (missing.status_code, shown_text(missing, "message")) == (404, "User not found")
    malformed = await client.get("/web/admin/users/abc")
    assert (malformed.status_code, shown_text(malformed, "message")) == (404, "Not found")
    assert malformed.headers["content-type"].startswith("text/html")
