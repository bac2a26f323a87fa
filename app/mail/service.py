"""Sending mail. Two backends, chosen by MAIL_URL:

- `console` (the default): the message is written to the log, nothing leaves the machine;
- `smtp://user:pass@host:port` (or `smtps://` for implicit TLS): real SMTP through
  aiosmtplib, upgraded with STARTTLS whenever the server offers it.

A message is queued as a row of the outbox (`mail_outbox`) in the transaction that decided
it, so it exists exactly when that transaction commits. After the commit the API tries it
at once in a task of its own (a slow mail server never holds a request, and an answer's
timing never tells whether a mail was queued); whatever that misses (the server down, the
process gone) the worker's `deliver_mail` job delivers from the rows. Delivery is at least
once: a row is claimed with a lease before the send and marked sent after it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database, after_commit, utcnow
from app.mail.models import OutgoingMail

log = logging.getLogger(__name__)

SMTP_TIMEOUT = 30.0
LEASE = timedelta(minutes=5)  # a claimed row is tried again after this if never marked
MAX_ATTEMPTS = 20
BATCH = 100


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


@dataclass(frozen=True)
class Mailer:
    db: Database
    url: str  # MAIL_URL
    sender: str  # MAIL_FROM


def build_message(mail: Mail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message.set_content(mail.body)  # text/plain; utf-8 where the body needs it
    return message


async def send(url: str, sender: str, mail: Mail) -> None:
    """Deliver one message now through the backend of `url`; raises when it cannot."""
    if url in ("", "console"):
        log.info(
            "mail (console backend)",
            extra={"to": mail.to, "subject": mail.subject, "body": mail.body},
        )
        return
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError("MAIL_URL must be `console` or smtp://user:pass@host:port")
    implicit_tls = parts.scheme == "smtps"
    await aiosmtplib.send(
        build_message(mail, sender),
        hostname=parts.hostname,
        port=parts.port or (465 if implicit_tls else 25),
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_tls=implicit_tls,
        # None: STARTTLS when the server offers it, plain otherwise.
        start_tls=None if not implicit_tls else False,
        timeout=SMTP_TIMEOUT,
    )


async def queue(session: AsyncSession, mailer: Mailer, mail: Mail) -> int:
    """Write the message to the outbox in the caller's transaction; once it commits, try
    to deliver it at once in the background."""
    row = OutgoingMail(recipient=mail.to, subject=mail.subject[:300], body=mail.body)
    session.add(row)
    await session.flush()
    mail_id = row.id

    async def kick() -> None:
        _in_background(deliver_due(mailer, only=mail_id))

    after_commit(session, kick)
    return mail_id


async def _claim(db: Database, only: int | None, limit: int) -> list[OutgoingMail]:
    """Due rows, leased: their next attempt moves past the send, so no one else takes them."""
    async with db.transaction() as session:
        now = utcnow()
        due = (
            select(OutgoingMail.id)
            .where(
                OutgoingMail.sent_at.is_(None),
                OutgoingMail.next_attempt_at <= now,
                OutgoingMail.attempts < MAX_ATTEMPTS,
            )
            .order_by(OutgoingMail.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if only is not None:
            due = due.where(OutgoingMail.id == only)
        rows = await session.scalars(
            update(OutgoingMail)
            .where(OutgoingMail.id.in_(due.scalar_subquery()))
            .values(attempts=OutgoingMail.attempts + 1, next_attempt_at=now + LEASE)
            .returning(OutgoingMail)
        )
        return sorted(rows, key=lambda r: r.id)


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 30 * 2 ** max(0, attempts - 1)))


async def deliver_due(mailer: Mailer, *, only: int | None = None, limit: int = BATCH) -> int:
    """Send the due messages of the outbox (or just `only`); answers how many were sent."""
    sent = 0
    for row in await _claim(mailer.db, only, limit):
        try:
            await send(mailer.url, mailer.sender, Mail(row.recipient, row.subject, row.body))
        except Exception as exc:
            log.warning(
                "mail not sent",
                extra={"mail_id": row.id, "attempts": row.attempts, "error": str(exc)},
            )
            async with mailer.db.transaction() as session:
                await session.execute(
                    update(OutgoingMail)
                    .where(OutgoingMail.id == row.id)
                    .values(next_attempt_at=utcnow() + backoff(row.attempts), last_error=str(exc))
                )
            continue
        async with mailer.db.transaction() as session:
            await session.execute(
                update(OutgoingMail)
                .where(OutgoingMail.id == row.id)
                .values(sent_at=utcnow(), body="", last_error=None)
            )
        sent += 1
    return sent


_in_flight: set[asyncio.Task[int]] = set()


def _in_background(work: Coroutine[Any, Any, int]) -> None:
    task = asyncio.get_running_loop().create_task(work)
    _in_flight.add(task)
    task.add_done_callback(_done)


def _done(task: asyncio.Task[int]) -> None:
    _in_flight.discard(task)
    if not task.cancelled() and task.exception() is not None:
        # The database itself failed: the worker's deliver_mail will find the row.
        log.warning("mail delivery deferred to the worker", exc_info=task.exception())


async def drain() -> None:
    """Wait for the deliveries in flight (shutdown, tests)."""
    while _in_flight:
        await asyncio.gather(*list(_in_flight), return_exceptions=True)
