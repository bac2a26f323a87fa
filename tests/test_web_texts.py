"""No developer text on the storefront: ledger kinds in words, the order column a noun in
Russian, badges that read as facts, a review ticket's subject and its default answer in the
customer's language with money in the locale's format (in the ticket and in the mail), mails
that give a link rather than an API call, legal pages and the operator page without
configuration names."""

from __future__ import annotations

import asyncio
import re
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select

from app.context import AppContext
from app.flows.review_tickets import resolve_review
from app.mail.service import Mailer
from app.tickets import service as tickets
from app.tickets.models import REFUND, TicketMessage
from tests.support.api import MakeService
from tests.support.client import MakeCustomer
from tests.support.web import csrf_of, signed_in


async def russian(client: httpx.AsyncClient) -> str:
    csrf = csrf_of(await client.get("/web/orders/new"))
    await client.post("/web/language", data={"csrf": csrf, "language": "ru"})
    return csrf


async def test_transactions_name_their_kinds_and_the_order_column_in_both_languages(
    client: httpx.AsyncClient, make_customer: MakeCustomer, make_service: MakeService
) -> None:
    await signed_in(client, make_customer, "10")
    service = await make_service(cancel=True, refill=True)
    csrf = csrf_of(await client.get("/web/orders/new"))
    data = {"csrf": csrf, "service": str(service), "link": "https://x.com/a", "quantity": "100"}
    assert (await client.post("/web/orders/new", data=data)).status_code == 303
    english = (await client.get("/web/transactions")).text
    assert "kind:" not in english
    assert '<td class="kind">Deposit</td>' in english and '<td class="kind">Charge</td>' in english
    services = (await client.get("/web/services")).text
    assert '<span class="badge">Can be canceled</span>' in services
    await russian(client)
    text = (await client.get("/web/transactions")).text
    assert '<th scope="col">Заказ</th>' in text and "Заказать" not in text
    assert '<td class="kind">Пополнение</td>' in text
    services = (await client.get("/web/services")).text
    assert '<span class="badge">Можно отменить</span>' in services
    assert '<span class="badge">Отменить</span>' not in services
    assert ">Заказать</a>" in services  # the link to order is a verb


async def test_a_review_ticket_and_its_refund_answer_speak_the_customers_language(
    ctx: AppContext,
    client: httpx.AsyncClient,
    make_customer: MakeCustomer,
    make_service: MakeService,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO", logger="app.mail.service")
    await signed_in(client, make_customer, "10")
    service = await make_service(cancel=True, rate=Decimal("2.7"))
    csrf = await russian(client)
    data = {"csrf": csrf, "service": str(service), "link": "https://x.com/r", "quantity": "100"}
    placed = await client.post("/web/orders/new", data=data)
    order_id = int(placed.headers["location"].rsplit("=", 1)[1])
    asked = await client.post(
        f"/web/orders/{order_id}/review", data={"csrf": csrf, "message": "Не пришло"}
    )
    ticket_id = int(asked.headers["location"].split("/")[-1].split("?")[0])
    notify = tickets.Notify(Mailer(ctx.db, "console", "panel"), None, "https://panel.example")
    async with ctx.db.transaction() as session:
        await resolve_review(session, notify, "ann", ticket_id, order_id=order_id, action=REFUND)
    thread = (await client.get(f"/web/tickets/{ticket_id}")).text
    assert f"<h1>Проверка заказа {order_id}</h1>" in thread
    async with ctx.db.session() as session:
        answer = await session.scalar(
            select(TicketMessage.body)
            .where(TicketMessage.ticket_id == ticket_id)
            .order_by(TicketMessage.id.desc())
            .limit(1)
        )
    assert answer == f"Мы проверили заказ {order_id}: 0,27\xa0$ возвращено на ваш баланс."
    body = await mailed_body(caplog)
    assert answer in body
    assert f"Прочитать и ответить: https://panel.example/web/tickets/{ticket_id}" in body
    assert "/client/v1" not in body


async def mailed_body(caplog: pytest.LogCaptureFixture) -> str:
    """The body of the mail the console backend delivered (in the background)."""
    for _ in range(100):
        records = [r for r in caplog.records if r.getMessage() == "mail (console backend)"]
        if records:
            return str(records[-1].__dict__["body"])
        await asyncio.sleep(0.02)
    raise AssertionError("no mail was delivered")


async def test_legal_and_operator_pages_name_no_setting(client: httpx.AsyncClient) -> None:
    for path in ("/web/terms", "/web/privacy-policy", "/web/terms-of-use", "/web/operator"):
        text = (await client.get(path)).text
        assert re.search(r"\b[A-Z]+_[A-Z_]+\b", text) is None, (path, text)
