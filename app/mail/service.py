"""Sending mail. Two backends, chosen by MAIL_URL:

- `console` (the default): the message is written to the log, nothing leaves the machine;
- `smtp://user:pass@host:port` (or `smtps://` for implicit TLS): real SMTP through
  aiosmtplib, upgraded with STARTTLS whenever the server offers it.

Mail is sent after the transaction that decided it has committed (`send_after_commit`), in
a task of its own: a slow or absent mail server never holds a request, and the answer's
timing never tells whether a mail was sent (the enumeration rule of sign-in).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import after_commit

log = logging.getLogger(__name__)

SMTP_TIMEOUT = 30.0


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


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


_in_flight: set[asyncio.Task[None]] = set()


async def _deliver(url: str, sender: str, mail: Mail) -> None:
    try:
        await send(url, sender, mail)
    except Exception:
        log.exception("mail not sent", extra={"to": mail.to, "subject": mail.subject})


def send_soon(url: str, sender: str, mail: Mail) -> None:
    """Send in the background; a failure is logged, never raised into the caller."""
    task = asyncio.get_running_loop().create_task(_deliver(url, sender, mail))
    _in_flight.add(task)
    task.add_done_callback(_in_flight.discard)


def send_after_commit(session: AsyncSession, url: str, sender: str, mail: Mail) -> None:
    """Send once the session's transaction has committed (never if it rolls back)."""

    async def work() -> None:
        send_soon(url, sender, mail)

    after_commit(session, work)


async def drain() -> None:
    """Wait for the messages in flight (shutdown, tests)."""
    while _in_flight:
        await asyncio.gather(*list(_in_flight), return_exceptions=True)
