"""The console's support inbox: tickets waiting longest first with how long each has
waited; a ticket is assigned, answered with a canned answer (the customer is mailed and
reads it), annotated with a note the customer never sees; an order's review ends with a
refund through the ledger, once, bounded by a support agent's refund limit, audited
naming the staff member."""

from __future__ import annotations

from decimal import Decimal

import httpx
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.context import AppContext
from app.ledger.models import LedgerEntry
from app.mail.service import Mailer
from app.tickets import service as tickets
from tests.support.api import Api, MakeService, MakeUser, Reseller, order_id_of
from tests.support.console import shown_text, signed_in, submit
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok


async def ticket_on_order(
    ctx: AppContext, api: Api, make_user: MakeUser, make_service: MakeService
) -> tuple[Reseller, int, int]:
    """A customer's order of 1000 at 0.90 under review by their ticket."""
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
    return customer, ticket.id, order


async def test_the_inbox_lists_tickets_by_waiting_time_with_their_age(
    client: httpx.AsyncClient,
    ctx: AppContext,
    api: Api,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    _, first, _ = await ticket_on_order(ctx, api, make_user, make_service)
    _, second, _ = await ticket_on_order(ctx, api, make_user, make_service)
    agent = await signed_in(client, ctx, "support")
    inbox = await client.get("/web/admin/tickets?status=open")
    assert inbox.status_code == 200
    assert inbox.text.index(f'id="ticket-{first}"') < inbox.text.index(f'id="ticket-{second}"')
    assert shown_text(inbox, f"ticket-{first}").endswith("0 min")
    page = f"/web/admin/tickets/{second}"
    assigned = await submit(client, page, f"{page}/assign", assignee="me")
    assert assigned.headers["location"] == f"{page}?done=assigned"
    mine = await client.get("/web/admin/tickets?assignee=me")
    assert f'id="ticket-{second}"' in mine.text and f'id="ticket-{first}"' not in mine.text
    exported = await client.get("/web/admin/tickets?assignee=me&format=csv")
    lines = exported.content.decode("utf-8-sig").splitlines()
    assert lines[1].split(",")[:6] == [
        str(second),
        lines[1].split(",")[1],
        "Not delivered",
        "order",
        "open",
        agent.staff.email,
    ]


async def test_a_ticket_is_answered_with_a_canned_answer_and_annotated(
    client: httpx.AsyncClient,
    ctx: AppContext,
    api: Api,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    customer, ticket, _ = await ticket_on_order(ctx, api, make_user, make_service)
    agent = await signed_in(client, ctx, "support")
    added = await submit(
        client, "/web/admin/canned", "/web/admin/canned", title="Looking", body="We are on it."
    )
    assert added.headers["location"] == "/web/admin/canned?done=canned"
    async with ctx.db.session() as session:
        (canned,) = await tickets.list_canned(session)
    page = f"/web/admin/tickets/{ticket}"
    empty = await submit(client, page, f"{page}/reply", message="")
    assert (empty.status_code, shown_text(empty, "error")) == (
        422,
        "Write an answer or choose a canned one.",
    )
    answered = await submit(client, page, f"{page}/reply", message="", canned_id=str(canned.id))
    assert answered.headers["location"] == f"{page}?done=answered"
    noted = await submit(client, page, f"{page}/note", message="Provider says tomorrow")
    assert noted.headers["location"] == f"{page}?done=noted"
    shown = await client.get(page)
    assert shown_text(shown, "ticket-status") == "answered"
    assert "Provider says tomorrow" in shown_text(shown, "messages")
    async with ctx.db.session() as session:
        seen = await tickets.messages_of(session, ticket, with_internal=False)
    assert [(m.author, m.body) for m in seen] == [
        ("customer", "Please look"),
        ("operator", "We are on it."),
    ]
    del customer
    async with ctx.db.session() as session:
        trail = await session.scalars(
            select(AuditEntry.action).where(AuditEntry.actor == agent.staff.email)
        )
        assert sorted(trail) == ["canned_answer.create", "ticket.note", "ticket.reply"]


async def test_a_review_ends_with_a_refund_within_the_agents_limit(
    client: httpx.AsyncClient,
    ctx: AppContext,
    api: Api,
    make_user: MakeUser,
    make_service: MakeService,
) -> None:
    customer, ticket, order = await ticket_on_order(ctx, api, make_user, make_service)
    limit = {"support_refund_limit": "0.5"}
    assert (
        await client.put("/admin/v1/staff/settings", headers=AUTH, json=limit)
    ).status_code == 200
    agent = await signed_in(client, ctx, "support")
    assert shown_text(await client.get("/web/admin/"), "support-review") == "1"
    page = f"/web/admin/tickets/{ticket}"
    shown = await client.get(page)
    assert "Your refund limit: $0.50" in shown.text
    above = await submit(
        client, page, f"{page}/resolve", order_id=str(order), action="refund", amount="0.6"
    )
    assert (above.status_code, shown_text(above, "error")) == (
        403,
        "A refund above 0.50000000 on a review needs the permission reviews:refund",
    )
    done = await submit(
        client, page, f"{page}/resolve", order_id=str(order), action="refund", amount="0.45"
    )
    assert done.headers["location"] == f"{page}?done=resolved"
    twice = await submit(
        client, page, f"{page}/resolve", order_id=str(order), action="refund", amount="0.1"
    )
    assert twice.status_code == 409
    async with ctx.db.session() as session:
        refunds = list(
            await session.execute(
                select(LedgerEntry.order_id, LedgerEntry.amount, LedgerEntry.reason).where(
                    LedgerEntry.kind == "refund"
                )
            )
        )
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "ticket.resolve")
        )
    assert [tuple(r) for r in refunds] == [
        (order, Decimal("0.45000000"), f"Order {order}: Ticket {ticket} review")
    ]
    assert entry is not None
    assert (entry.actor, entry.staff_id, entry.entity_id) == (
        agent.staff.email,
        agent.staff.id,
        str(ticket),
    )
    assert entry.after is not None and entry.after["resolution"]["amount"] == "0.45"
    resolved = await client.get(f"{page}?done=resolved")
    assert shown_text(resolved, f"resolution-{order}").startswith(f"Order {order}: refund $0.45")
    assert shown_text(await client.get("/web/admin/"), "support-review") == "0"
    balance = await api(customer.key, "balance")
    assert balance == {"balance": "9.55000", "currency": "USD"}
    await ledger_ok(ctx)
