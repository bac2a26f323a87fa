"""Support tickets through the HTTP APIs: a customer's ticket about an order puts it under
review (ToS 2.5) so that no API cancels, refills or re-orders its target, the operator
resolves it once with a refund through the ledger and the customer is mailed the answer;
internal notes never reach the customer; text comes back as data, never markup."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select

from app.context import AppContext
from app.errors import LinkUnderReview, OrderUnderReview
from app.ledger.models import LedgerEntry
from tests.support.api import Api, MakeService, order_id_of
from tests.support.client import Customer, MakeCustomer
from tests.support.env import AUTH
from tests.support.ledger import ledger_ok
from tests.support.mail import Mailbox

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
    await seen.call("GET", "/tickets")
    await seen.call("GET", "/privacy/export")
    seen.assert_no_note()
    operator_view = await admin(client, "GET", f"/tickets/{ticket_id}")
    assert [m["internal"] for m in operator_view["messages"]] == [False, True, False, False]
    await mailbox.wait_for(customer.email, count=2)
