"""Support in the storefront (/web/tickets): a customer opens a ticket, finds it in the
list (newest first, in pages), reads the thread and the operator's answer, replies and
closes it; an order is sent for review from its page, which then offers neither cancel nor
a second review. Every refusal of the service is shown next to its field, in the page's
language, and every text a person wrote comes out escaped."""

from __future__ import annotations

import re
from datetime import timedelta

import httpx
from sqlalchemy import select, update

from app.context import AppContext
from app.db import utcnow
from app.mail.service import Mailer
from app.orders.models import Order
from app.tickets import service as tickets
from app.tickets.models import Ticket, TicketMessage
from tests.support.api import Api, MakeService, order_id_of
from tests.support.client import Customer, MakeCustomer
from tests.support.web import csrf_of, signed_in


def ticket_id_of(response: httpx.Response) -> int:
    assert response.status_code == 303, response.text[:500]
    found = re.fullmatch(r"/web/tickets/(\d+)\?done=\w+", response.headers["location"])
    assert found is not None, response.headers["location"]
    return int(found.group(1))


async def place(client: httpx.AsyncClient, csrf: str, service: int, link: str) -> int:
    placed = await client.post(
        "/web/orders/new",
        data={"csrf": csrf, "service": str(service), "link": link, "quantity": "100"},
    )
    return int(placed.headers["location"].rsplit("=", 1)[1])


async def operator_answers(ctx: AppContext, ticket_id: int, text: str) -> None:
    async with ctx.db.transaction() as session:
        notify = tickets.Notify(Mailer(ctx.db, "console", "panel"), None)
        await tickets.operator_answers(session, notify, ticket_id, "ann", text)
        await tickets.add_note(session, ticket_id, "ann", "internal: refund later")


async def test_open_a_ticket_read_the_answer_reply_and_close_it(
    ctx: AppContext, client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    customer = await signed_in(client, make_customer, "0")
    form = await client.get("/web/tickets/new")
    assert form.status_code == 200 and 'id="ticket-form"' in form.text
    csrf = csrf_of(form)
    ticket_id = ticket_id_of(
        await client.post(
            "/web/tickets/new",
            data={
                "csrf": csrf,
                "subject": "Payment <b>lost</b>",
                "category": "payment",
                "orders": "",
                "message": "I paid\n<script>alert(1)</script>",
            },
        )
    )
    async with ctx.db.session() as session:
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None
        assert (ticket.user_id, ticket.category, ticket.status, ticket.subject) == (
            customer.user_id,
            "payment",
            "open",
            "Payment <b>lost</b>",
        )

    thread = await client.get(f"/web/tickets/{ticket_id}?done=opened")
    assert 'id="done"' in thread.text
    assert "<h1>Payment &lt;b&gt;lost&lt;/b&gt;</h1>" in thread.text
    assert "I paid\n&lt;script&gt;alert(1)&lt;/script&gt;</div>" in thread.text
    assert "<script>alert(1)" not in thread.text and "<b>lost" not in thread.text

    # The operator answers (and keeps a note the customer never sees).
    await operator_answers(ctx, ticket_id, "Found it, credited.")
    thread = await client.get(f"/web/tickets/{ticket_id}")
    bodies = re.findall(r'<div class="body">(.*?)</div>', thread.text, flags=re.S)
    assert bodies == ["I paid\n&lt;script&gt;alert(1)&lt;/script&gt;", "Found it, credited."]
    assert "internal: refund later" not in thread.text
    assert 'id="ticket-status">Answered</dd>' in thread.text

    replied = await client.post(
        f"/web/tickets/{ticket_id}/messages", data={"csrf": csrf, "message": "Thanks!"}
    )
    assert replied.headers["location"] == f"/web/tickets/{ticket_id}?done=sent#messages"
    thread = await client.get(f"/web/tickets/{ticket_id}")
    assert re.findall(r'<div class="body">(.*?)</div>', thread.text, flags=re.S)[-1] == "Thanks!"
    assert 'id="ticket-status">Waiting for Support</dd>' in thread.text

    closed = await client.post(f"/web/tickets/{ticket_id}/close", data={"csrf": csrf})
    assert closed.headers["location"] == f"/web/tickets/{ticket_id}?done=closed"
    thread = await client.get(f"/web/tickets/{ticket_id}")
    assert 'id="ticket-status">Closed</dd>' in thread.text
    assert 'id="close-ticket"' not in thread.text
    # The same ticket through the customer API: the same messages, in order.
    api = (await client.get(f"/client/v1/tickets/{ticket_id}", headers=customer.auth)).json()
    assert [m["body"] for m in api["messages"]] == [
        "I paid\n<script>alert(1)</script>",
        "Found it, credited.",
        "Thanks!",
    ]
    assert api["status"] == "closed"


async def test_the_ticket_list_is_newest_first_in_pages(
    ctx: AppContext, client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    customer = await signed_in(client, make_customer, "0")
    other = await make_customer("0")
    notify = tickets.Notify(Mailer(ctx.db, "console", "panel"), None)
    async with ctx.db.transaction() as session:
        ids = [
            (
                await tickets.open_ticket(
                    session,
                    notify,
                    customer.user_id,
                    subject=f"Question {n}",
                    category="other",
                    message="m",
                )
            ).id
            for n in range(23)
        ]
        foreign = await tickets.open_ticket(
            session, notify, other.user_id, subject="Not yours", category="other", message="m"
        )
    first = await client.get("/web/tickets")
    rows = re.findall(r'<tr id="ticket-(\d+)" data-status="open">', first.text)
    assert [int(r) for r in rows] == ids[::-1][:20]
    assert "Not yours" not in first.text
    assert first.text.count(">Waiting for Support</td>") == 20
    following = re.search(r'href="(/web/tickets\?before=\d+)" id="next-page"', first.text)
    assert following is not None
    second = await client.get(following.group(1))
    assert [int(r) for r in re.findall(r'<tr id="ticket-(\d+)"', second.text)] == ids[::-1][20:]
    assert 'id="next-page"' not in second.text
    # Another customer's ticket is not found.
    assert (await client.get(f"/web/tickets/{foreign.id}")).status_code == 404


async def test_new_ticket_refusals_are_shown_next_to_their_field(
    ctx: AppContext,
    client: httpx.AsyncClient,
    api: Api,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    await signed_in(client, make_customer, "10")
    stranger = await make_customer("10")
    service = await make_service()
    csrf = csrf_of(await client.get("/web/tickets/new"))
    mine = await place(client, csrf, service, "https://x.com/mine")
    foreign_id = order_id_of(
        await api(stranger.key, "add", service=service, link="https://x.com/s", quantity=100)
    )
    base = {"csrf": csrf, "subject": "Help", "category": "order", "message": "Half arrived"}

    async def refused(field: str, text: str, **changes: str) -> str:
        response = await client.post("/web/tickets/new", data={**base, **changes})
        assert response.status_code == 422, response.text[:300]
        assert f'role="alert" id="error-{field}">{text}</p>' in response.text, response.text
        return response.text

    page = await refused("orders", "Incorrect order ID", orders="12, abc")
    assert 'value="12, abc"' in page  # what was typed stays
    await refused("orders", "Incorrect order ID", orders=str(foreign_id))
    await refused("subject", "Write a subject of at most 200 characters", subject="   ")
    await refused("subject", "Write a subject of at most 200 characters", subject="s" * 201)
    await refused("message", "Write a message of at most 5000 characters", message="m" * 5001)
    await refused("category", "Incorrect category", category="gossip")
    # A ticket of category "order" puts the orders it names under review, once.
    ticket_id = ticket_id_of(
        await client.post("/web/tickets/new", data={**base, "orders": str(mine)})
    )
    await refused("orders", "This order is already under review by Support", orders=str(mine))
    await client.post("/web/language", data={"csrf": csrf, "language": "ru"})
    await refused("orders", "Этот заказ уже на проверке у поддержки", orders=str(mine))
    await refused("orders", "Неверный номер заказа", orders="abc")
    async with ctx.db.session() as session:
        assert await session.scalar(select(Order.review_ticket_id).where(Order.id == mine)) == (
            ticket_id
        )
        assert len(list(await session.scalars(select(Ticket.id)))) == 1


async def test_an_order_goes_to_review_from_its_page(
    ctx: AppContext,
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    customer = await signed_in(client, make_customer, "10")
    service = await make_service(cancel=True)
    csrf = csrf_of(await client.get("/web/orders/new"))
    order_id = await place(client, csrf, service, "https://x.com/review")
    detail = await client.get(f"/web/orders/{order_id}")
    assert f'href="/web/orders/{order_id}/review" id="ask-review"' in detail.text
    assert f'action="/web/orders/{order_id}/cancel"' in detail.text

    form = await client.get(f"/web/orders/{order_id}/review")
    assert 'id="review-form"' in form.text
    empty = await client.post(f"/web/orders/{order_id}/review", data={"csrf": csrf, "message": " "})
    assert empty.status_code == 422
    assert 'role="alert" id="error-message">Write a message of at most 5000 characters' in (
        empty.text
    )
    ticket_id = ticket_id_of(
        await client.post(
            f"/web/orders/{order_id}/review", data={"csrf": csrf, "message": "Half never came"}
        )
    )
    thread = await client.get(f"/web/tickets/{ticket_id}?done=review")
    assert f"<h1>Review of order {order_id}</h1>" in thread.text
    assert f'<a href="/web/orders/{order_id}">{order_id}</a> (under review)' in thread.text

    # Under review: no cancel, no second review; the page says so and links the ticket.
    detail = await client.get(f"/web/orders/{order_id}")
    assert 'id="under-review"' in detail.text and 'id="ask-review"' not in detail.text
    assert f'href="/web/tickets/{ticket_id}"' in detail.text
    assert f'action="/web/orders/{order_id}/cancel"' not in detail.text
    listed = await client.get("/web/orders")
    assert f'id="cancel-{order_id}"' not in listed.text
    assert 'id="already-under-review"' in (await client.get(f"/web/orders/{order_id}/review")).text
    again = await client.post(
        f"/web/orders/{order_id}/review", data={"csrf": csrf, "message": "Again"}
    )
    assert again.status_code == 422
    assert "This order is already under review by Support" in again.text
    # The new-ticket page offers the same, with the order filled in.
    prefilled = await client.get(f"/web/tickets/new?order={order_id}")
    assert f'name="orders" inputmode="numeric" value="{order_id}"' in prefilled.text
    assert '<option value="order" selected>' in prefilled.text

    # Closing the ticket withdraws the review: cancel is offered again.
    await client.post(f"/web/tickets/{ticket_id}/close", data={"csrf": csrf})
    assert f'id="cancel-{order_id}"' in (await client.get("/web/orders")).text
    async with ctx.db.session() as session:
        assert (
            await session.scalar(select(Order.review_ticket_id).where(Order.id == order_id)) is None
        )
    missing = await client.get("/web/orders/999999999/review")
    assert missing.status_code == 404 and "Incorrect order ID" in missing.text
    assert customer.user_id > 0


async def test_a_ticket_closed_long_ago_asks_for_a_new_one_in_russian(
    ctx: AppContext, client: httpx.AsyncClient, make_customer: MakeCustomer
) -> None:
    customer: Customer = await signed_in(client, make_customer, "0")
    csrf = csrf_of(await client.get("/web/tickets/new"))
    ticket_id = ticket_id_of(
        await client.post(
            "/web/tickets/new",
            data={"csrf": csrf, "subject": "Old", "category": "other", "message": "m"},
        )
    )
    await client.post(f"/web/tickets/{ticket_id}/close", data={"csrf": csrf})
    async with ctx.db.transaction() as session:
        await session.execute(
            update(Ticket)
            .where(Ticket.id == ticket_id)
            .values(closed_at=utcnow() - timedelta(days=8))
        )
    await client.post("/web/language", data={"csrf": csrf, "language": "ru"})
    listed = await client.get("/web/tickets")
    assert "<h1>Поддержка</h1>" in listed.text and ">Закрыто</td>" in listed.text
    thread = await client.get(f"/web/tickets/{ticket_id}")
    assert '<dd id="ticket-status">Закрыто</dd>' in thread.text
    late = await client.post(
        f"/web/tickets/{ticket_id}/messages", data={"csrf": csrf, "message": "One more thing"}
    )
    assert late.status_code == 422
    assert (
        'role="alert" id="error-message">Обращение закрыто больше 7 дней назад: создайте новое</p>'
        in late.text
    )
    assert ">One more thing</textarea>" in late.text
    async with ctx.db.session() as session:
        count = len(list(await session.scalars(select(TicketMessage.id))))
    assert count == 1
    assert customer.user_id > 0
