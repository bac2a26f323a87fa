"""The console's legal texts page and the customer page's chargeback and evidence pack:
the same functions and audit entries as /admin/v1, naming the staff member."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
from sqlalchemy import select

from app.accounts.models import User
from app.audit.models import AuditEntry
from app.context import AppContext
from tests.support.api import MakeUser
from tests.support.console import shown_text, signed_in, submit
from tests.support.env import AUTH


async def test_an_owner_publishes_a_version_and_a_manager_only_reads_them(
    client: httpx.AsyncClient, ctx: AppContext
) -> None:
    owner = await signed_in(client, ctx, "owner")
    page = "/web/admin/legal"
    empty = await submit(client, page, page, document="terms", language="ru", text="  ")
    assert empty.status_code == 422
    done = await submit(client, page, page, document="terms", language="ru", text="Правила.")
    assert done.status_code == 303, (done.status_code, shown_text(done, "error"))
    assert done.headers["location"] == f"{page}?done=published"
    shown = await client.get(done.headers["location"])
    assert 'id="versions-terms"' in shown.text and "Правила." not in shown.text
    (version,) = (await client.get("/admin/v1/legal/terms/versions", headers=AUTH)).json()
    assert (version["language"], version["text"], version["published_by"]) == (
        "ru",
        "Правила.",
        owner.staff.email,
    )
    async with ctx.db.session() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "legal.publish"))
    assert entry is not None and entry.actor == owner.staff.email

    client.cookies.clear()
    await signed_in(client, ctx, "manager")
    listed = await client.get(page)
    assert listed.status_code == 200 and 'id="legal-form"' not in listed.text
    refused = await client.post(page, data={"document": "terms", "language": "en", "text": "x"})
    assert refused.status_code == 403


async def test_the_chargeback_button_and_the_evidence_download(
    client: httpx.AsyncClient, ctx: AppContext, make_user: MakeUser
) -> None:
    user = await make_user("12.5")
    manager = await signed_in(client, ctx, "manager")
    page = f"/web/admin/users/{user.user_id}"
    unconfirmed = await submit(client, page, f"{page}/chargeback", reason="Disputed")
    assert shown_text(unconfirmed, "error") == "Tick the box to confirm: the balance is forfeited."
    done = await submit(client, page, f"{page}/chargeback", reason="Disputed", confirm="1")
    assert done.headers["location"] == f"{page}?done=charged-back"
    async with ctx.db.session() as session:
        blocked = await session.get(User, user.user_id)
    assert blocked is not None and (blocked.status, blocked.balance) == ("blocked", Decimal(0))
    pack = await submit(client, page, f"{page}/evidence")
    assert pack.headers["content-disposition"] == (
        f'attachment; filename="evidence-user-{user.user_id}.json"'
    )
    (chargeback,) = json.loads(pack.text)["chargebacks"]
    assert (chargeback["reason"], chargeback["source"]) == ("Disputed", manager.staff.email)
