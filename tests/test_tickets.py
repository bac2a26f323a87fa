"""Support tickets through the HTTP APIs: a customer's ticket about an order puts it under
review (ToS 2.5) so that no API cancels, refills or re-orders its target, the operator
resolves it once with a refund through the ledger and the customer is mailed the answer;
internal notes never reach the customer; text comes back as data, never markup."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update

from app.context import AppContext
from app.db import utcnow
from app.errors import LinkUnderReview, OrderUnderReview
from app.ledger.models import LedgerEntry
from app.orders.models import Order
from app.sandbox import SandboxConfig, SandboxService
from app.settings import Settings
from app.tickets.models import Ticket, TicketMessage
from tests.support.api import Api, MakeService, order_id_of
from tests.support.client import Customer, MakeCustomer
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok
from tests.support.mail import Mailbox
from tests.support.upstream import call_job, register_provider, run_jobs, sandbox, sandbox_stats

SECRET_NOTE = "INTERNAL: customer looks like a chargeback risk"


class Seen:
    """Every answer the customer got, to check no internal note is ever in one."""

    def __init__(self, client: httpx.AsyncClient, who: Customer) -> None:
        self.client = client
        self.who = who
        self.bodies: list[str] = []

    async def call(self, method: str, path: str, body: Any = None) -> httpx.Response:
        response = await self.client.request(
            method, "/client/v1" + path, headers=self.who.auth, json=body
        )
        self.bodies.append(response.text)
        return response

    def assert_no_note(self) -> None:
        assert self.bodies
        for body in self.bodies:
            assert SECRET_NOTE not in body and "INTERNAL" not in body, body


async def place(seen: Seen, service: int, link: str, quantity: int = 1000) -> int:
    made = await seen.call(
        "POST", "/orders", {"service": str(service), "link": link, "quantity": str(quantity)}
    )
    assert made.status_code == 201, made.text
    order_id: int = made.json()["order"]
    return order_id


async def admin(
    client: httpx.AsyncClient, method: str, path: str, body: Any = None, expect: int = 200
) -> Any:
    response = await client.request(method, "/admin/v1" + path, headers=AUTH, json=body)
    assert response.status_code == expect, response.text
    return response.json()


async def test_review_locks_the_order_on_every_api_and_a_half_refund_resolves_it_once(
    client: httpx.AsyncClient,
    api: Api,
    ctx: AppContext,
    make_customer: MakeCustomer,
    make_service: MakeService,
    mailbox: Mailbox,
) -> None:
    customer = await make_customer("10")
    seen = Seen(client, customer)
    service = await make_service(rate=Decimal("0.90"))  # manual: no provider
    pending = await place(seen, service, "https://x.com/pending")
    done = await place(seen, service, "https://x.com/done")
    await admin(client, "POST", f"/orders/{done}/status", {"status": "Completed"})
    # Warm the API v2 hot path: key, service and rate cached, lean statements used.
    warm = order_id_of(
        await api(customer.key, "add", service=service, link="https://x.com/warm", quantity=100)
    )
    assert await api(customer.key, "cancel", order=warm) == [{"order": warm, "cancel": 1}]

    opened = await seen.call(
        "POST",
        "/tickets",
        {
            "subject": "Followers did not arrive",
            "category": "order",
            "message": "Order done shows completed but nothing arrived.",
            "orders": [pending, done],
        },
    )
    assert opened.status_code == 201, opened.text
    ticket = opened.json()
    assert ticket["status"] == "open"
    assert ticket["under_review"] == [pending, done]
    ticket_id = ticket["id"]

    # While it lasts: no cancel, no refill, no new order on the targets, on any API.
    under = OrderUnderReview.message
    refused = await seen.call("POST", f"/orders/{pending}/cancel")
    assert (refused.status_code, refused.json()["detail"]) == (409, under)
    refused = await seen.call("POST", f"/orders/{done}/refill")
    assert (refused.status_code, refused.json()["detail"]) == (409, under)
    refused = await seen.call(
        "POST",
        "/orders",
        {"service": str(service), "link": "https://x.com/done", "quantity": "500"},
    )
    assert (refused.status_code, refused.json()["detail"]) == (409, LinkUnderReview.message)
    assert await api(customer.key, "cancel", order=pending) == [
        {"order": pending, "cancel": {"error": under}}
    ]
    assert await api(customer.key, "cancel", orders=f"{pending},{warm}") == [
        {"order": pending, "cancel": {"error": under}},
        {"order": warm, "cancel": {"error": "Order cannot be canceled"}},
    ]
    assert await api(customer.key, "refill", order=done) == {"error": under}
    assert await api(customer.key, "refill", orders=str(done)) == [
        {"order": done, "refill": {"error": under}}
    ]
    twice = await seen.call("POST", f"/orders/{done}/review", {"message": "again"})
    assert (twice.status_code, twice.json()["detail"]) == (
        409,
        "This order is already under review by Support",
    )
    for link in ("https://x.com/done", "https://X.com/done/"):
        again = await api(customer.key, "add", service=service, link=link, quantity=500)
        assert again == {"error": LinkUnderReview.message}

    # The operator sees both orders with their upstream history, notes, refunds half.
    detail = await admin(client, "GET", f"/tickets/{ticket_id}")
    histories = {o["id"]: o["upstream_history"] for o in detail["orders_detail"]}
    assert [e["action"] for e in histories[done]] == ["status", "review"]
    assert [e["action"] for e in histories[pending]] == ["review"]
    await admin(client, "POST", f"/tickets/{ticket_id}/notes", {"message": SECRET_NOTE}, 201)
    resolved = await admin(
        client,
        "POST",
        f"/tickets/{ticket_id}/resolve",
        {"order_id": done, "action": "refund", "amount": "0.45", "message": "Half refunded."},
    )
    assert resolved["resolution"]["action"] == "refund"
    assert resolved["resolution"]["amount"] == "0.45"
    assert resolved["ticket"]["status"] == "answered"
    assert resolved["ticket"]["under_review"] == [pending]

    async with ctx.db.session() as session:
        refunds = list(
            await session.scalars(
                select(LedgerEntry).where(
                    LedgerEntry.order_id == done, LedgerEntry.kind == "refund"
                )
            )
        )
    assert [(e.amount, e.reason) for e in refunds] == [
        (Decimal("0.45"), f"Order {done}: Ticket {ticket_id} review")
    ]
    await ledger_ok(ctx)
    (mail,) = await mailbox.wait_for(customer.email)
    assert mail.subject == f"Support answered your ticket #{ticket_id}"
    assert "Half refunded." in mail.body and SECRET_NOTE not in mail.body

    # A second resolution is refused, and no money moves.
    again = await client.post(
        f"/admin/v1/tickets/{ticket_id}/resolve",
        headers=AUTH,
        json={"order_id": done, "action": "refund", "amount": "0.45"},
    )
    assert again.status_code == 409, again.text
    await ledger_ok(ctx)
    balance = (await api(customer.key, "balance"))["balance"]
    # 10 − 0.9 − 0.9 (the warm-up order was refunded) + 0.45
    assert Decimal(balance) == Decimal("8.65")

    # Its review over, the completed order is refillable and its link free again.
    refilled = await api(customer.key, "refill", order=done)
    assert list(refilled) == ["refill"] and int(refilled["refill"]) > 0
    placed = await api(
        customer.key, "add", service=service, link="https://x.com/done", quantity=100
    )
    order_id_of(placed)
    # The other order is still under review until the operator ends it.
    assert (await seen.call("POST", f"/orders/{pending}/cancel")).status_code == 409
    await admin(
        client,
        "POST",
        f"/tickets/{ticket_id}/resolve",
        {"order_id": pending, "action": "no_action"},
    )
    assert (await seen.call("POST", f"/orders/{pending}/cancel")).status_code == 200

    shown = await seen.call("GET", f"/tickets/{ticket_id}")
    assert [m["author"] for m in shown.json()["messages"]] == ["customer", "operator", "operator"]
    assert shown.json()["under_review"] == []
    await seen.call("GET", "/tickets")
    await seen.call("GET", "/privacy/export")
    wrote = await seen.call("POST", f"/tickets/{ticket_id}/messages", {"message": "Thanks"})
    assert wrote.status_code == 201
    assert (await seen.call("POST", f"/tickets/{ticket_id}/close")).status_code == 200
    seen.assert_no_note()
    operator_view = await admin(client, "GET", f"/tickets/{ticket_id}")
    assert [m["internal"] for m in operator_view["messages"]] == [False, True, False, False, False]
    assert [(r["order_id"], r["action"]) for r in operator_view["resolutions"]] == [
        (done, "refund"),
        (pending, "no_action"),
    ]
    await mailbox.wait_for(customer.email, count=2)


async def open_ticket(seen: Seen, **fields: Any) -> dict[str, Any]:
    body = {"subject": "Help", "category": "other", "message": "Hello", **fields}
    response = await seen.call("POST", "/tickets", body)
    assert response.status_code == 201, response.text
    ticket: dict[str, Any] = response.json()
    return ticket


async def test_ticket_text_with_markup_comes_back_as_the_same_data_string(
    client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    seen = Seen(client, await make_customer())
    hostile = '<script>alert("x")</script><img src=x onerror=alert(1)> & "quotes"'
    ticket = await open_ticket(seen, subject=hostile[:60], message=hostile)
    shown = await seen.call("GET", f"/tickets/{ticket['id']}")
    assert shown.headers["content-type"] == "application/json"
    assert shown.json()["subject"] == hostile[:60]
    assert shown.json()["messages"][0]["body"] == hostile
    # JSON escaping only: the text is a JSON string, never markup.
    assert '"body":"<script>alert(\\"x\\")</script>' in shown.text
    operator = await admin(client, "GET", f"/tickets/{ticket['id']}")
    assert operator["messages"][0]["body"] == hostile


async def test_bad_ticket_input_is_a_clear_422(
    client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    seen = Seen(client, await make_customer())
    for body in (
        {"subject": "S", "category": "order", "message": "x" * 5001},
        {"subject": "S", "category": "nonsense", "message": "m"},
        {"subject": "", "category": "other", "message": "m"},
        {"subject": "S", "category": "other", "message": "   "},
        {"subject": "S", "category": "other", "message": "m", "orders": ["x"]},
        {"subject": "S", "category": "other", "message": "m", "html": True},
    ):
        refused = await seen.call("POST", "/tickets", body)
        assert refused.status_code == 422, (body, refused.text)
    foreign = await seen.call(
        "POST", "/tickets", {"subject": "S", "category": "order", "message": "m", "orders": [1]}
    )
    assert (foreign.status_code, foreign.json()["detail"]) == (422, "Incorrect order ID")
    missing = await seen.call("GET", "/tickets/999999999")
    assert missing.status_code == 404


async def test_statuses_follow_the_conversation_and_a_closed_ticket_reopens_for_7_days(
    client: httpx.AsyncClient, ctx: AppContext, make_customer: MakeCustomer
) -> None:
    seen = Seen(client, await make_customer())
    ticket_id = (await open_ticket(seen))["id"]
    await admin(client, "POST", f"/tickets/{ticket_id}/messages", {"message": "Hi"}, 201)
    assert (await seen.call("GET", f"/tickets/{ticket_id}")).json()["status"] == "answered"
    wrote = await seen.call("POST", f"/tickets/{ticket_id}/messages", {"message": "More"})
    assert (wrote.status_code, wrote.json()["status"]) == (201, "open")
    closed = await seen.call("POST", f"/tickets/{ticket_id}/close")
    assert closed.json()["status"] == "closed" and closed.json()["closed_at"]
    reopened = await seen.call("POST", f"/tickets/{ticket_id}/messages", {"message": "Again"})
    assert (reopened.status_code, reopened.json()["status"]) == (201, "open")
    await seen.call("POST", f"/tickets/{ticket_id}/close")
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Ticket)
            .where(Ticket.id == ticket_id)
            .values(closed_at=utcnow() - timedelta(days=7, minutes=1))
        )
    late = await seen.call("POST", f"/tickets/{ticket_id}/messages", {"message": "Late"})
    assert late.status_code == 409
    assert late.json()["detail"] == "This ticket was closed more than 7 days ago: open a new ticket"
    bodies = [
        m["body"] for m in (await seen.call("GET", f"/tickets/{ticket_id}")).json()["messages"]
    ]
    assert bodies == ["Hello", "Hi", "More", "Again"]


async def test_a_blocked_customer_still_reads_their_tickets_but_writes_nothing(
    client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    customer = await make_customer()
    seen = Seen(client, customer)
    ticket_id = (await open_ticket(seen))["id"]
    await admin(client, "POST", f"/users/{customer.user_id}/block", {"reason": "abuse"})
    listed = await seen.call("GET", "/tickets")
    assert [t["id"] for t in listed.json()["tickets"]] == [ticket_id]
    assert (await seen.call("GET", f"/tickets/{ticket_id}")).status_code == 200
    wrote = await seen.call("POST", f"/tickets/{ticket_id}/messages", {"message": "m"})
    assert wrote.status_code == 403
    assert (
        await seen.call("POST", "/tickets", {"subject": "s", "category": "other", "message": "m"})
    ).status_code == 403
    assert (await seen.call("GET", "/orders")).status_code == 403


@pytest.fixture
def notify_operators(ctx: AppContext) -> Iterator[str]:
    address = "support-team@example.com"
    ctx.settings.support_notify_email = address
    yield address
    ctx.settings.support_notify_email = None


async def test_operators_filter_assign_and_answer_with_canned_answers(
    client: httpx.AsyncClient,
    ctx: AppContext,
    make_customer: MakeCustomer,
    mailbox: Mailbox,
    notify_operators: str,
) -> None:
    customer = await make_customer()
    seen = Seen(client, customer)
    first = (await open_ticket(seen, category="payment", subject="Deposit missing"))["id"]
    second = (await open_ticket(seen, category="refill"))["id"]
    mails = await mailbox.wait_for(notify_operators, count=2)
    assert sorted(m.subject for m in mails) == [
        f"New support ticket #{first} (payment)",
        f"New support ticket #{second} (refill)",
    ]
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Ticket)
            .where(Ticket.id == first)
            .values(waiting_since=utcnow() - timedelta(hours=3))
        )

    def ids(rows: list[dict[str, Any]]) -> list[int]:
        return [int(r["id"]) for r in rows]

    assert ids(await admin(client, "GET", "/tickets")) == [first, second]
    assert ids(await admin(client, "GET", "/tickets?waiting_minutes=120")) == [first]
    assert ids(await admin(client, "GET", "/tickets?category=refill")) == [second]
    await admin(client, "POST", f"/tickets/{second}/assign", {"assignee": "ann"})
    assert ids(await admin(client, "GET", "/tickets?assignee=ann")) == [second]
    assert ids(await admin(client, "GET", "/tickets?assignee=")) == [first]

    canned = await admin(
        client, "POST", "/canned-answers", {"title": "Deposit", "body": "Credited now."}, 201
    )
    await admin(
        client,
        "PUT",
        f"/canned-answers/{canned['id']}",
        {"title": "Deposit", "body": "Your deposit is credited."},
    )
    sent = await admin(
        client, "POST", f"/tickets/{first}/messages", {"canned_id": canned["id"]}, 201
    )
    assert (sent["body"], sent["operator"], sent["internal"]) == (
        "Your deposit is credited.",
        "admin token",
        False,
    )
    both = await client.post(
        f"/admin/v1/tickets/{first}/messages",
        headers=AUTH,
        json={"canned_id": canned["id"], "message": "x"},
    )
    assert both.status_code == 422
    assert ids(await admin(client, "GET", "/tickets?status=answered")) == [first]
    (answer,) = await mailbox.wait_for(customer.email)
    assert answer.subject == f"Support answered your ticket #{first}"
    assert "Your deposit is credited." in answer.body
    assert (await seen.call("PATCH", "/me", {"language": "ru"})).status_code == 200
    await admin(client, "POST", f"/tickets/{first}/messages", {"message": "{id} <b>"}, 201)
    _, russian = await mailbox.wait_for(customer.email, count=2)
    assert russian.subject == f"Поддержка ответила на ваше обращение #{first}"
    assert "\n\n{id} <b>\n\n" in russian.body
    await admin(client, "DELETE", f"/canned-answers/{canned['id']}")
    assert await admin(client, "GET", "/canned-answers") == []
    await admin(client, "POST", f"/tickets/{second}/status", {"status": "closed"})
    assert (await seen.call("GET", f"/tickets/{second}")).json()["status"] == "closed"


async def test_support_measures_in_the_report_and_the_metrics(
    client: httpx.AsyncClient, ctx: AppContext, make_customer: MakeCustomer
) -> None:
    seen = Seen(client, await make_customer())
    answered = (await open_ticket(seen))["id"]
    (await open_ticket(seen, category="order"))["id"]
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Ticket)
            .where(Ticket.id == answered)
            .values(created_at=utcnow() - timedelta(hours=2))
        )
    await admin(client, "POST", f"/tickets/{answered}/messages", {"message": "Hi"}, 201)
    await admin(client, "POST", f"/tickets/{answered}/status", {"status": "closed"})
    window = "from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z"
    got = await admin(client, "GET", f"/reports/support?{window}")
    assert (got["created"], got["open_now"], got["answered"], got["closed"]) == (2, 1, 1, 1)
    assert got["by_category"] == {"order": 1, "payment": 0, "refill": 0, "cancel": 0, "other": 1}
    assert 7199 < got["first_response_seconds_avg"] < 7300
    assert 7199 < got["resolution_seconds_max"] < 7300
    empty = await admin(client, "GET", "/reports/support?from=2000-01-01&to=2000-01-02")
    assert (empty["created"], empty["first_response_seconds_avg"]) == (0, None)
    backwards = await client.get(
        "/admin/v1/reports/support?from=2001-01-01&to=2000-01-01", headers=AUTH
    )
    assert backwards.status_code == 422

    scraped = await client.get("/metrics", headers=AUTH)
    samples = {
        s.name: s.value
        for family in text_string_to_metric_families(scraped.text)
        for s in family.samples
    }
    assert samples["smm_support_open_tickets"] == 1
    assert samples["smm_support_first_response_seconds_count"] >= 1
    assert samples["smm_support_resolution_seconds_count"] >= 1


async def test_tickets_are_exported_erased_with_the_user_and_purged_after_retention(
    client: httpx.AsyncClient, ctx: AppContext, settings: Settings, make_customer: MakeCustomer
) -> None:
    customer = await make_customer()
    seen = Seen(client, customer)
    ticket_id = (await open_ticket(seen, message="My data"))["id"]
    await admin(client, "POST", f"/tickets/{ticket_id}/messages", {"message": "Answer"}, 201)
    await admin(client, "POST", f"/tickets/{ticket_id}/notes", {"message": SECRET_NOTE}, 201)
    exported = (await seen.call("GET", "/privacy/export")).json()["support_tickets"]
    assert [(t["id"], [m["body"] for m in t["messages"]]) for t in exported] == [
        (ticket_id, ["My data", "Answer"])
    ]
    seen.assert_no_note()

    other = await make_customer()
    old = (await open_ticket(Seen(client, other)))["id"]
    kept = (await open_ticket(Seen(client, other)))["id"]
    await Seen(client, other).call("POST", f"/tickets/{old}/close")
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Ticket).where(Ticket.id == old).values(updated_at=utcnow() - timedelta(days=400))
        )
    result = await call_job(settings, ctx, "enforce_retention")
    assert result["tickets"] == 1

    await admin(client, "DELETE", f"/users/{customer.user_id}")
    async with ctx.db.session() as session:
        left = list(await session.scalars(select(Ticket.id).order_by(Ticket.id)))
        messages = await session.scalar(
            select(func.count(TicketMessage.id)).where(TicketMessage.ticket_id == ticket_id)
        )
    assert (left, messages) == ([kept], 0)


async def test_each_resolution_ends_the_review_its_own_way(
    client: httpx.AsyncClient,
    ctx: AppContext,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    customer = await make_customer("10")
    seen = Seen(client, customer)
    service = await make_service(rate=Decimal("1.00"))
    to_complete = await place(seen, service, "https://x.com/c")
    to_refund = await place(seen, service, "https://x.com/r")
    partial = await place(seen, service, "https://x.com/p")
    await admin(client, "POST", f"/orders/{partial}/status", {"status": "Partial", "remains": 500})
    ticket_id = (
        await open_ticket(seen, category="order", orders=[to_complete, to_refund, partial])
    )["id"]

    def resolve(order_id: int, action: str, **more: str) -> Any:
        return client.post(
            f"/admin/v1/tickets/{ticket_id}/resolve",
            headers=AUTH,
            json={"order_id": order_id, "action": action, **more},
        )

    # Refused decisions change nothing: the order stays under review.
    assert (await resolve(to_complete, "resend")).status_code == 409  # no provider
    assert (await resolve(to_refund, "refund", amount="1.01")).status_code == 422
    assert (await resolve(to_refund, "no_action", amount="0.5")).status_code == 422
    assert (await resolve(partial, "refund")).json()["detail"] == (
        "This order was refunded already: it cannot be refunded again"
    )
    closing = await admin(
        client, "POST", f"/tickets/{ticket_id}/status", {"status": "closed"}, expect=409
    )
    assert closing["detail"] == "Resolve the order reviews of this ticket before closing it"

    assert (await resolve(to_complete, "complete")).status_code == 200
    full = await resolve(to_refund, "refund")
    assert full.json()["resolution"]["amount"] == "1.00000000"
    assert (await resolve(partial, "no_action")).status_code == 200
    async with ctx.db.session() as session:
        rows = {
            o: (
                await session.execute(
                    select(Order.status, Order.refunded, Order.review_ticket_id).where(
                        Order.id == o
                    )
                )
            ).one()
            for o in (to_complete, to_refund, partial)
        }
    assert rows == {
        to_complete: ("Completed", Decimal("0"), None),
        to_refund: ("Pending", Decimal("1"), None),
        partial: ("Partial", Decimal("0.5"), None),
    }
    await ledger_ok(ctx)
    await admin(client, "POST", f"/tickets/{ticket_id}/status", {"status": "closed"})


async def test_resend_upstream_sends_the_reviewed_order_to_its_provider_again(
    client: httpx.AsyncClient,
    ctx: AppContext,
    settings: Settings,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    config = SandboxConfig(
        services=[SandboxService(1, "Followers", rate=Decimal("0.40"), min=10, max=100_000)],
        seconds_to_start=3600,
        seconds_to_complete=3600,
    )
    async with sandbox(config) as (url, _):
        provider_id = await register_provider(ctx, settings, url)
        service = await make_service(
            rate=Decimal("0.90"), provider_id=provider_id, provider_service_id="1"
        )
        customer = await make_customer("5")
        seen = Seen(client, customer)
        order_id = await place(seen, service, "https://x.com/resend")
        await run_jobs(settings, ctx)
        first = await order_row(ctx, order_id)
        assert (first.upstream_state, first.status) == ("sent", "In progress")
        review = await seen.call("POST", f"/orders/{order_id}/review", {"message": "Stuck"})
        assert review.status_code == 201, review.text
        ticket_id = review.json()["id"]
        assert review.json()["subject"] == f"Review of order {order_id}"

        resolved = await admin(
            client,
            "POST",
            f"/tickets/{ticket_id}/resolve",
            {"order_id": order_id, "action": "resend"},
        )
        assert resolved["ticket"]["under_review"] == []
        queued = await order_row(ctx, order_id)
        assert (queued.upstream_state, queued.provider_order_id) == ("queued", None)
        await run_jobs(settings, ctx)
        again = await order_row(ctx, order_id)
        assert again.upstream_state == "sent"
        assert again.provider_order_id not in (None, first.provider_order_id)
        assert (await sandbox_stats(url))["orders"] == 2
        detail = await admin(client, "GET", f"/tickets/{ticket_id}")
        (shown,) = detail["orders_detail"]
        actions = [(e["action"], e["outcome"]) for e in shown["upstream_history"]]
        assert ("review", "started") in actions and ("resend", "queued") in actions
        assert actions.index(("resend", "queued")) < len(actions) - 1  # sent after it
    await ledger_ok(ctx)


async def order_row(ctx: AppContext, order_id: int) -> Order:
    async with ctx.db.session() as session:
        order = await session.get(Order, order_id)
    assert order is not None
    return order
