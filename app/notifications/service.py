"""Notifications: a customer's choices, the Telegram link, and delivering the outbox.

The outbox is filled by triggers (see models.py) in the transaction of the change itself,
only for what the customer chose, so no path that completes an order or spends money can
forget one. Delivery is at least once per channel: a row is leased before its channels are
tried; the mail goes to the mail outbox in the same transaction that marks it done (so it
is queued once), a Telegram message is sent outside any transaction and marked after.

Linking Telegram: the account page shows a one-time code (kept as SHA-256, 15 minutes);
the customer sends it to the panel's bot, the poll job reads the bot's updates
(getUpdates, its offset kept in `telegram_state` in the same transaction as the link)
and answers in the chat once the transaction has committed."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import USER_ACTIVE, User
from app.catalog.models import Service
from app.customers.models import CustomerLogin
from app.db import Database, utcnow
from app.mail import service as mail
from app.notifications import texts
from app.notifications.models import (
    BALANCE_LOW,
    Notification,
    NotificationSettings,
    TelegramState,
)
from app.notifications.telegram import Bot, TelegramError
from app.orders.models import Order
from app.pages import i18n
from app.settings import Settings

CODE_LIFETIME = timedelta(minutes=15)
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
CODE_LENGTH = 8
LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 12
BATCH = 100
START = re.compile(r"^\s*(?:/start\s+)?([A-Za-z0-9]{6,16})\s*$")


def bot_of(settings: Settings) -> Bot | None:
    """The panel's bot, when TELEGRAM_BOT_TOKEN is set."""
    if not settings.telegram_bot_token:
        return None
    return Bot(settings.telegram_api_url, settings.telegram_bot_token)


def code_digest(code: str) -> str:
    return hashlib.sha256(code.strip().upper().encode()).hexdigest()


async def settings_of(session: AsyncSession, user_id: int) -> NotificationSettings:
    """The customer's choices (the defaults, unsaved, for one who never chose)."""
    found = await session.get(NotificationSettings, user_id)
    return found or NotificationSettings(
        user_id=user_id,
        order_completed=False,
        order_partial=False,
        order_canceled=False,
        low_balance=False,
        low_balance_below=Decimal(0),
        by_mail=True,
    )


async def _row(session: AsyncSession, user_id: int) -> NotificationSettings:
    await session.execute(
        pg_insert(NotificationSettings).values(user_id=user_id).on_conflict_do_nothing()
    )
    found = await session.scalar(
        select(NotificationSettings)
        .where(NotificationSettings.user_id == user_id)
        .with_for_update()
    )
    assert found is not None
    return found


@dataclass(frozen=True)
class Choices:
    order_completed: bool
    order_partial: bool
    order_canceled: bool
    low_balance: bool
    low_balance_below: Decimal
    by_mail: bool


async def choose(session: AsyncSession, user_id: int, choices: Choices) -> NotificationSettings:
    row = await _row(session, user_id)
    for name, value in vars(choices).items():
        setattr(row, name, value)
    await session.flush()
    return row


async def new_link_code(session: AsyncSession, user_id: int) -> str:
    """A one-time code that links the chat it is sent from (a new one replaces the old)."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    row = await _row(session, user_id)
    row.telegram_code_hash = code_digest(code)
    row.telegram_code_expires_at = utcnow() + CODE_LIFETIME
    await session.flush()
    return code


async def unlink(session: AsyncSession, user_id: int) -> None:
    row = await _row(session, user_id)
    row.telegram_chat_id = None
    row.telegram_linked_at = None
    row.telegram_code_hash = None
    row.telegram_code_expires_at = None
    await session.flush()


async def link(session: AsyncSession, code: str, chat_id: int) -> int | None:
    """Link the chat to the customer whose unexpired code this is (once); their id."""
    return await session.scalar(
        update(NotificationSettings)
        .where(
            NotificationSettings.telegram_code_hash == code_digest(code),
            NotificationSettings.telegram_code_expires_at > utcnow(),
        )
        .values(
            telegram_chat_id=chat_id,
            telegram_linked_at=utcnow(),
            telegram_code_hash=None,
            telegram_code_expires_at=None,
        )
        .returning(NotificationSettings.user_id)
    )


# Reading the bot's updates --------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    chat_id: int
    text: str


async def _language_of(session: AsyncSession, user_id: int) -> str:
    found = await session.scalar(
        select(CustomerLogin.language).where(CustomerLogin.user_id == user_id)
    )
    return found or "en"


async def _answer(session: AsyncSession, update_: dict[str, Any], panel: str) -> Reply | None:
    message = update_.get("message")
    if not isinstance(message, dict) or not isinstance(message.get("chat"), dict):
        return None
    chat_id, text = message["chat"].get("id"), message.get("text")
    if not isinstance(chat_id, int) or not isinstance(text, str):
        return None
    asked = START.match(text)
    user_id = await link(session, asked.group(1), chat_id) if asked else None
    if user_id is None:
        return Reply(chat_id, texts.UNKNOWN_CODE["en"]) if asked else None
    language = await _language_of(session, user_id)
    return Reply(chat_id, texts.LINKED[language].format(panel=panel))


async def poll_updates(db: Database, http: httpx.AsyncClient, bot: Bot, panel: str) -> int:
    """Read the bot's new messages, link the chats that sent a valid code, answer them;
    how many chats were linked."""
    async with db.session() as session:
        state = await session.get(TelegramState, 1)
        offset = state.next_offset if state else 0
        known = state.bot_username if state else None
    name = known or await bot.username(http)
    found = await bot.updates(http, offset)
    if not found:
        if name != known:
            await _remember(db, offset, name)
        return 0
    replies: list[Reply] = []
    async with db.transaction() as session:
        for update_ in found:
            answered = await _answer(session, update_, panel)
            if answered is not None:
                replies.append(answered)
        newest = max(int(u.get("update_id", 0)) for u in found)
        await _remember(session, newest + 1, name)
    for reply in replies:
        try:
            await bot.send(http, reply.chat_id, reply.text)
        except TelegramError:
            pass  # the link holds; only the chat's confirmation is lost
    return sum(1 for r in replies if r.text not in texts.UNKNOWN_CODE.values())


async def _remember(where: Database | AsyncSession, offset: int, name: str | None) -> None:
    """Keep the bot's offset and name (in the caller's transaction, or one of its own)."""
    if isinstance(where, Database):
        async with where.transaction() as session:
            await _remember(session, offset, name)
        return
    values = {"next_offset": offset, "bot_username": name}
    await where.execute(
        pg_insert(TelegramState)
        .values(id=1, **values)
        .on_conflict_do_update(index_elements=[TelegramState.id], set_=values)
    )


async def bot_username(session: AsyncSession) -> str | None:
    """The bot's @name, as the poll job last read it."""
    return await session.scalar(select(TelegramState.bot_username).where(TelegramState.id == 1))


# Delivering the outbox ------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    email: str | None
    chat_id: int | None
    subject: str
    body: str


async def _claim(db: Database, limit: int) -> list[int]:
    async with db.transaction() as session:
        now = utcnow()
        due = (
            select(Notification.id)
            .where(Notification.done_at.is_(None), Notification.next_attempt_at <= now)
            .order_by(Notification.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        claimed = await session.scalars(
            update(Notification)
            .where(Notification.id.in_(due.scalar_subquery()))
            .values(attempts=Notification.attempts + 1, next_attempt_at=now + LEASE)
            .returning(Notification.id)
        )
        return sorted(claimed)


async def _compose(session: AsyncSession, settings: Settings, item: Notification) -> Message | None:
    """The message in the customer's language, or None when nobody is to be told (an
    account blocked or erased since)."""
    user = await session.get(User, item.user_id)
    if user is None or user.status != USER_ACTIVE or user.deleted_at is not None:
        return None
    chosen = await settings_of(session, item.user_id)
    language = await _language_of(session, item.user_id)
    base = settings.public_url.rstrip("/")
    values: dict[str, object] = {}
    if item.event == BALANCE_LOW:
        values = {
            "balance": i18n.money(item.balance or Decimal(0), user.currency, language),
            "below": i18n.money(chosen.low_balance_below, user.currency, language),
            "link": f"{base}/web/funds",
        }
    else:
        order = await session.get(Order, item.order_id)
        if order is None:
            return None
        service = await session.get(Service, order.service_id)
        values = {
            "order": order.id,
            "service": named(service, language) if service else order.service_id,
            "remains": i18n.number(order.remains or 0, language),
            "quantity": i18n.number(order.quantity, language),
            "refunded": i18n.money(order.refunded, user.currency, language),
            "link": f"{base}/web/orders/{order.id}",
        }
    return Message(
        email=user.email if chosen.by_mail else None,
        chat_id=chosen.telegram_chat_id,
        subject=texts.subject(language, item.event, **values),
        body=texts.body(language, item.event, **values),
    )


def named(service: Service, language: str) -> str:
    return service.name_ru if language == "ru" and service.name_ru else service.name


@dataclass
class Run:
    mailed: int = 0
    sent: int = 0
    failed: int = 0


async def deliver_due(
    db: Database,
    http: httpx.AsyncClient,
    settings: Settings,
    mailer: mail.Mailer,
    *,
    limit: int = BATCH,
) -> Run:
    """Deliver the due notifications on each channel the customer has."""
    run = Run()
    bot = bot_of(settings)
    for notification_id in await _claim(db, limit):
        async with db.transaction() as session:
            item = await session.get(Notification, notification_id, with_for_update=True)
            assert item is not None
            message = await _compose(session, settings, item)
            now = utcnow()
            if message is not None and message.email and item.mail_done_at is None:
                await mail.queue(
                    session, mailer, mail.Mail(message.email, message.subject, message.body)
                )
                run.mailed += 1
            item.mail_done_at = item.mail_done_at or now
            telegram = message is not None and message.chat_id is not None and bot is not None
            if not telegram:
                item.telegram_done_at = item.telegram_done_at or now
            if item.telegram_done_at is not None:
                item.done_at = now
                continue
        assert message is not None and message.chat_id is not None and bot is not None
        try:
            await bot.send(http, message.chat_id, message.body)
        except TelegramError as exc:
            run.failed += 1
            await _failed(db, notification_id, str(exc))
            continue
        async with db.transaction() as session:
            await session.execute(
                update(Notification)
                .where(Notification.id == notification_id)
                .values(telegram_done_at=utcnow(), done_at=utcnow(), last_error=None)
            )
        run.sent += 1
    return run


async def _failed(db: Database, notification_id: int, error: str) -> None:
    async with db.transaction() as session:
        item = await session.get(Notification, notification_id, with_for_update=True)
        assert item is not None
        item.last_error = error[:500]
        if item.attempts >= MAX_ATTEMPTS:
            item.done_at = utcnow()  # given up: the error stays for the operator
        else:
            item.next_attempt_at = utcnow() + mail.backoff(item.attempts)


async def recent(session: AsyncSession, user_id: int, limit: int = 10) -> list[Notification]:
    return list(
        await session.scalars(
            select(Notification)
            .where(Notification.user_id == user_id)
            .order_by(Notification.id.desc())
            .limit(limit)
        )
    )
