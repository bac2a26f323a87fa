"""Notifications: a customer chooses on the account page what to be told; the order's
status change and the balance's fall write the notification in their own transaction
(triggers), and the worker delivers it by mail (real SMTP) and, once the customer has
linked the panel's bot with a one-time code, by Telegram (a local fake Bot API over real
HTTP), each once, in the customer's language."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select, update

from app.context import AppContext
from app.notifications.models import Notification, NotificationSettings
from tests.support.api import Api, MakeService, order_id_of
from tests.support.client import Customer, MakeCustomer
from tests.support.env import AUTH
from tests.support.mail import Mailbox
from tests.support.telegram import BOT_NAME, TOKEN, FakeBotApi, fake_bot_api
from tests.support.web import refs, signed_in
from workers.main import deliver_notifications, poll_telegram


@pytest.fixture
async def bot(ctx: AppContext) -> AsyncIterator[FakeBotApi]:
    before = ctx.settings.telegram_bot_token, ctx.settings.telegram_api_url
    async with fake_bot_api() as fake:
        ctx.settings.telegram_bot_token, ctx.settings.telegram_api_url = TOKEN, fake.url
        try:
            yield fake
        finally:
            ctx.settings.telegram_bot_token, ctx.settings.telegram_api_url = before


def jobs(ctx: AppContext) -> dict[str, object]:
    return {"db": ctx.db, "settings": ctx.settings}


async def choose(client: httpx.AsyncClient, **choices: str) -> None:
    page = await client.get("/web/account")
    sent = await client.post(
        "/web/account/notifications", data={"csrf": refs(page.text).csrf or "", **choices}
    )
    assert sent.status_code == 303, sent.text


async def link_telegram(
    client: httpx.AsyncClient, ctx: AppContext, bot: FakeBotApi, chat: int
) -> None:
    await poll_telegram(jobs(ctx))  # the worker reads the bot's name (getMe)
    page = await client.get("/web/account")
    shown = await client.post(
        "/web/account/telegram/link", data={"csrf": refs(page.text).csrf or ""}
    )
    found = re.search(r'<code id="telegram-code">/start ([A-Z0-9]+)</code>', shown.text)
    assert found is not None, shown.text
    assert f"https://t.me/{BOT_NAME}?start={found.group(1)}" in shown.text
    bot.say(chat, f"/start {found.group(1)}")
    assert await poll_telegram(jobs(ctx)) == 1


async def set_status(client: httpx.AsyncClient, order_id: int, status: str, **more: int) -> None:
    done = await client.post(
        f"/admin/v1/orders/{order_id}/status", headers=AUTH, json={"status": status, **more}
    )
    assert done.status_code == 200, done.text


async def test_a_completed_order_is_told_by_mail_and_telegram_once(
    client: httpx.AsyncClient,
    ctx: AppContext,
    api: Api,
    mailbox: Mailbox,
    bot: FakeBotApi,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    customer = await signed_in(client, make_customer, "10")
    await choose(client, order_completed="on", order_canceled="on", by_mail="on")
    await link_telegram(client, ctx, bot, 4242)
    assert bot.to(4242) == ["Linked: SMM Panel will send your notifications here."] or bot.to(4242)[
        0
    ].startswith("Linked: ")
    account = await client.get("/web/account")
    assert 'id="telegram-linked"' in account.text
    # A code works once.
    bot.say(4243, bot.updates[-1]["message"]["text"])
    assert await poll_telegram(jobs(ctx)) == 0
    assert bot.to(4243) == [
        "This code is unknown or has expired. Get a new one on your account page."
    ]

    service = await make_service(name="Real followers")
    order_id = order_id_of(
        await api(customer.key, "add", service=service, link="https://x.com/a", quantity=100)
    )
    partial = order_id_of(
        await api(customer.key, "add", service=service, link="https://x.com/b", quantity=100)
    )
    await set_status(client, order_id, "Completed")
    await set_status(client, partial, "Partial", remains=40)  # not chosen: not told
    assert await deliver_notifications(jobs(ctx)) == {"mailed": 1, "sent": 1, "failed": 0}
    (mail,) = await mailbox.wait_for(customer.email)
    assert mail.subject == f"Order {order_id} is completed"
    assert f"/web/orders/{order_id}" in mail.body
    assert bot.to(4242)[-1].startswith(f"Your order {order_id} (Real followers) is completed.")
    assert await deliver_notifications(jobs(ctx)) == {"mailed": 0, "sent": 0, "failed": 0}
    async with ctx.db.session() as session:
        told = list(await session.scalars(select(Notification.event)))
    assert told == ["order_completed"]


async def test_low_balance_is_told_once_per_crossing_in_the_customers_language(
    client: httpx.AsyncClient,
    ctx: AppContext,
    api: Api,
    mailbox: Mailbox,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    customer = await signed_in(client, make_customer, "10")
    page = await client.get("/web/account")
    await client.post("/web/language", data={"csrf": refs(page.text).csrf or "", "language": "ru"})
    await choose(client, low_balance="on", low_balance_below="5,5", by_mail="on")
    async with ctx.db.session() as session:
        chosen = await session.get(NotificationSettings, customer.user_id)
        assert chosen is not None and chosen.low_balance_below == Decimal("5.5")
    service = await make_service(rate=Decimal("10"), min_quantity=10)

    async def spend(units: int, link: str) -> None:
        await api(customer.key, "add", service=service, link=link, quantity=units)

    await spend(400, "https://x.com/1")  # 10 → 6: above 5.5
    await spend(100, "https://x.com/2")  # 6 → 5: crosses
    await spend(300, "https://x.com/3")  # 5 → 2: already below
    await client.post(
        f"/admin/v1/users/{customer.user_id}/topup", headers=AUTH, json={"amount": "10"}
    )
    await spend(900, "https://x.com/4")  # 12 → 3: crosses again
    assert await deliver_notifications(jobs(ctx)) == {"mailed": 2, "sent": 0, "failed": 0}
    mails = await mailbox.wait_for(customer.email, count=2)
    assert [m.subject for m in mails] == ["Баланс почти исчерпан"] * 2
    told = sorted(m.body.replace("\xa0", " ").split(" — ")[0] for m in mails)
    assert told == ["На вашем балансе 3,00 $", "На вашем балансе 5,00 $"]
    assert "меньше заданных 5,50 $" in mails[0].body.replace("\xa0", " ")


async def test_a_failed_telegram_message_is_retried_later_and_sent_once(
    client: httpx.AsyncClient,
    ctx: AppContext,
    api: Api,
    bot: FakeBotApi,
    make_customer: MakeCustomer,
    make_service: MakeService,
) -> None:
    customer = await signed_in(client, make_customer, "10")
    await choose(client, order_canceled="on")  # Telegram only: no mail
    await link_telegram(client, ctx, bot, 77)
    service = await make_service()
    order_id = order_id_of(
        await api(customer.key, "add", service=service, link="https://x.com/c", quantity=100)
    )
    await set_status(client, order_id, "Canceled")
    bot.failing = True
    assert await deliver_notifications(jobs(ctx)) == {"mailed": 0, "sent": 0, "failed": 1}
    async with ctx.db.session() as session:
        (row,) = await session.scalars(select(Notification))
    assert row.done_at is None and row.last_error == "sendMessage: Bad Gateway"
    # Not due yet: nothing is tried.
    assert await deliver_notifications(jobs(ctx)) == {"mailed": 0, "sent": 0, "failed": 0}
    bot.failing = False
    async with ctx.db.transaction() as session:
        await session.execute(update(Notification).values(next_attempt_at=row.created_at))
    assert await deliver_notifications(jobs(ctx)) == {"mailed": 0, "sent": 1, "failed": 0}
    assert bot.to(77)[-1].startswith(f"Your order {order_id} (Followers) is canceled; $")


async def test_unlinking_stops_telegram_and_an_unconfigured_bot_hides_it(
    client: httpx.AsyncClient, ctx: AppContext, bot: FakeBotApi, make_customer: MakeCustomer
) -> None:
    customer: Customer = await signed_in(client, make_customer, "0")
    await link_telegram(client, ctx, bot, 5)
    page = await client.get("/web/account")
    done = await client.post(
        "/web/account/telegram/unlink", data={"csrf": refs(page.text).csrf or ""}
    )
    assert done.status_code == 303
    async with ctx.db.session() as session:
        row = await session.get(NotificationSettings, customer.user_id)
        assert row is not None and row.telegram_chat_id is None
    ctx.settings.telegram_bot_token = None
    page = await client.get("/web/account")
    assert 'id="telegram-off"' in page.text
