"""The console's money and trust pages: the ledger and payments filtered and exported;
conversion rates set and removed (never the panel's own); a referral reward voided through
the ledger; the margin report over a range of days; privacy requests with their deadlines,
late ones standing out, completed by erasure; the audit log by staff member; the
storefront's name and texts; and the owner's staff pages: a member invited, given another
role, issued a token shown once, disabled. Each change audited naming the member."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import httpx
from sqlalchemy import select, update

from app.audit.models import AuditEntry
from app.context import AppContext
from app.db import utcnow
from app.ledger.models import LedgerEntry
from app.privacy import service as privacy
from app.privacy.models import DeletionRequest
from app.staff import service as staff
from app.storefront import service as storefront
from tests.support.api import Api, MakeService, MakeUser, order_id_of
from tests.support.console import shown_text, signed_in, submit
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok
from tests.support.mail import Mailbox


async def actions_of(ctx: AppContext, actor: str) -> list[str]:
    async with ctx.db.session() as session:
        rows = await session.scalars(
            select(AuditEntry.action).where(AuditEntry.actor == actor).order_by(AuditEntry.id)
        )
        return list(rows)


async def test_the_ledger_and_conversion_rates(
    client: httpx.AsyncClient, ctx: AppContext, make_user: MakeUser
) -> None:
    user = await make_user("4", "=HYPERLINK(1)@shop.example")
    finance = await signed_in(client, ctx, "finance")
    listed = await client.get(f"/web/admin/ledger?user_id={user.user_id}&kind=deposit")
    assert listed.status_code == 200 and "test deposit" in listed.text
    exported = await client.get(f"/web/admin/ledger?user_id={user.user_id}&format=csv")
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert lines[0] == "ID,When,Customer,Kind,Amount,Balance after,Reason,Order,Who"
    assert lines[1].split(",")[3:6] == ["deposit", "4.00000000", "4.00000000"]
    page = "/web/admin/currencies"
    own = await submit(client, page, page, code="usd", rate="2")
    assert (own.status_code, shown_text(own, "error")) == (
        409,
        "The panel's own currency always converts at 1",
    )
    bad = await submit(client, page, page, code="R1", rate="2")
    assert (bad.status_code, shown_text(bad, "error")) == (
        422,
        "Enter a currency code of three letters, such as RUB.",
    )
    assert (await submit(client, page, page, code="rub", rate="0.0108")).status_code == 303
    rates = (await client.get("/admin/v1/currencies", headers=AUTH)).json()
    assert {"code": "RUB", "rate": "0.01080000", "source": "admin"} in rates
    removed = await submit(client, page, f"{page}/RUB/remove")
    assert removed.headers["location"] == f"{page}?done=rate-removed"
    assert await actions_of(ctx, finance.staff.email) == ["currency.set", "currency.delete"]


async def test_a_referral_reward_is_voided_and_the_margin_report_shown(
    client: httpx.AsyncClient,
    ctx: AppContext,
    api: Api,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    referrer = await make_user("0")
    friend = await make_user("0")
    code = (await client.get(f"/admin/v1/users/{referrer.user_id}", headers=AUTH)).json()
    body = {"referral_code": code["referral_code"]}
    await client.put(f"/admin/v1/users/{friend.user_id}/referrer", headers=AUTH, json=body)
    await client.post(
        f"/admin/v1/users/{friend.user_id}/topup", headers=AUTH, json={"amount": "20"}
    )
    service = await make_service()
    order_id_of(
        await api(friend.key, "add", service=service, link="https://x.com/m", quantity=1000)
    )
    finance = await signed_in(client, ctx, "finance")
    listed = await client.get(f"/web/admin/referrals?referrer_id={referrer.user_id}")
    (reward_id,) = [int(i) for i in re.findall(r'<tr id="reward-(\d+)">', listed.text)]
    voided = await submit(
        client,
        "/web/admin/referrals",
        f"/web/admin/referrals/{reward_id}/void",
        reason="Chargeback",
    )
    assert voided.headers["location"] == "/web/admin/referrals?done=voided"
    async with ctx.db.session() as session:
        entries = list(
            await session.execute(
                select(LedgerEntry.kind, LedgerEntry.amount, LedgerEntry.operator).where(
                    LedgerEntry.user_id == referrer.user_id
                )
            )
        )
    assert [tuple(e) for e in entries] == [
        ("referral", Decimal("1.00000000"), None),
        ("adjustment", Decimal("-1.00000000"), finance.staff.email),
    ]
    today = utcnow().date().isoformat()
    report = await client.get(f"/web/admin/margin?start={today}&end={today}")
    assert shown_text(report, "margin-total").split()[:3] == ["Total", "1", "$0.90"]
    backwards = await client.get(f"/web/admin/margin?start={today}&end=2000-01-01")
    assert backwards.status_code == 422
    exported = await client.get(f"/web/admin/margin?start={today}&end={today}&format=csv")
    assert exported.content.decode("utf-8-sig").splitlines()[-1].startswith(",total,1,0.90")
    await ledger_ok(ctx)


async def test_privacy_requests_show_their_deadlines_and_are_completed(
    client: httpx.AsyncClient, ctx: AppContext, make_user: MakeUser
) -> None:
    late_user = await make_user("0", "late@shop.example")
    soon_user = await make_user("0", "soon@shop.example")
    async with ctx.db.transaction() as session:
        late = await privacy.request_deletion(session, late_user.user_id, 30)
        soon = await privacy.request_deletion(session, soon_user.user_id, 30)
        await session.execute(
            update(DeletionRequest)
            .where(DeletionRequest.id == late.id)
            .values(deadline=utcnow() - timedelta(days=1))
        )
        await session.execute(
            update(DeletionRequest)
            .where(DeletionRequest.id == soon.id)
            .values(deadline=utcnow() + timedelta(days=3, hours=1))
        )
    manager = await signed_in(client, ctx, "manager")
    shown = await client.get("/web/admin/privacy")
    assert shown.text.index(f'id="request-{late.id}"') < shown.text.index(f'id="request-{soon.id}"')
    assert f'<td id="request-{late.id}-left" class="late">late</td>' in shown.text
    assert f'<td id="request-{soon.id}-left" class="soon">3 days</td>' in shown.text
    exported = await client.get("/web/admin/privacy?format=csv")
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert [line.split(",")[:2] for line in lines] == [
        ["ID", "Customer"],
        [str(late.id), str(late_user.user_id)],
        [str(soon.id), str(soon_user.user_id)],
    ]
    done = await submit(
        client, "/web/admin/privacy", f"/web/admin/privacy/{late.id}/complete", confirm="1"
    )
    assert done.headers["location"] == "/web/admin/privacy?done=completed"
    user = (await client.get(f"/admin/v1/users/{late_user.user_id}", headers=AUTH)).json()
    assert user["email"] is None
    assert await actions_of(ctx, manager.staff.email) == ["user.deletion_complete"]


async def test_the_storefront_settings_and_the_audit_log_by_member(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    owner = await signed_in(client, ctx, "owner")
    page = "/web/admin/settings"
    saved = await submit(
        client, page, page, name="Boost & Co", terms="1. Orders\r\n\r\nFinal.", privacy_policy=""
    )
    assert saved.headers["location"] == f"{page}?done=settings"
    async with ctx.db.session() as session:
        row = await storefront.current(session)
    assert row is not None and (row.name, row.terms, row.privacy_policy) == (
        "Boost & Co",
        "1. Orders\n\nFinal.",
        None,
    )
    blank_name = await submit(client, page, page, name="   ")
    assert blank_name.status_code == 303  # empty: PANEL_NAME again
    mine = await client.get(f"/web/admin/audit?staff_id={owner.staff.id}")
    assert [a for a in re.findall(r"<code>([a-z._]+)</code>", mine.text)] == [
        "storefront.update",
        "storefront.update",
    ]
    by_entity = await client.get("/web/admin/audit?entity=storefront&format=csv")
    assert len(by_entity.content.decode("utf-8-sig").splitlines()) == 3


async def test_the_owner_invites_a_member_changes_the_role_and_issues_a_token(
    client: httpx.AsyncClient, ctx: AppContext, mailbox: Mailbox
) -> None:
    owner = await signed_in(client, ctx, "owner")
    added = await submit(
        client, "/web/admin/staff", "/web/admin/staff", email="ann@staff.example", role="support"
    )
    assert added.headers["location"] == "/web/admin/staff?done=member"
    (mail,) = await mailbox.wait_for("ann@staff.example")
    async with ctx.db.session() as session:
        ann = await staff.find_member(session, "ann@staff.example")
    page = f"/web/admin/staff/{ann.id}"
    role = await submit(client, page, f"{page}/role", role="finance")
    assert role.headers["location"] == f"{page}?done=role"
    issued = await submit(client, page, f"{page}/tokens/issue", name="ci")
    token = shown_text(issued, "issued-token")
    assert token.startswith("stf_")
    api = await client.get("/admin/v1/payments", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200  # finance reads payments with its token
    disabled = await submit(client, page, f"{page}/disable")
    assert disabled.headers["location"] == f"{page}?done=disabled"
    api = await client.get("/admin/v1/payments", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 401
    last_owner = f"/web/admin/staff/{owner.staff.id}"
    alone = await submit(client, last_owner, f"{last_owner}/role", role="support")
    assert (alone.status_code, shown_text(alone, "error")) == (
        409,
        "The last active owner cannot be disabled or given another role",
    )
    limit = await submit(
        client, "/web/admin/staff", "/web/admin/staff/refund-limit", support_refund_limit="2.5"
    )
    assert limit.headers["location"] == "/web/admin/staff?done=limit"
    assert await actions_of(ctx, owner.staff.email) == [
        "staff.create",
        "staff.role",
        "staff.token_issue",
        "staff.disable",
        "staff.settings",
    ]
    assert mail.token()
