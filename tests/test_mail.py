"""The mail module against a real SMTP server on 127.0.0.1 (aiosmtpd), with login."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import func, select, update

from app.context import AppContext
from app.db import utcnow
from app.mail import service as mail
from app.mail.models import OutgoingMail
from app.mail.service import Mail, Mailer
from app.settings import Settings
from tests.support.mail import Mailbox, free_port
from tests.support.upstream import call_job


class Authenticator:
    def __call__(
        self, server: object, session: object, envelope: object, mechanism: str, data: object
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"panel", b"p@ss")
        return AuthResult(success=ok)


@pytest.fixture
def auth_server() -> Iterator[Mailbox]:
    box = Mailbox(port=free_port())
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        authenticator=Authenticator(),
        auth_require_tls=False,
    )
    controller.start()
    yield box
    controller.stop()


async def test_smtp_backend_logs_in_and_delivers_utf8_text(auth_server: Mailbox) -> None:
    url = f"smtp://panel:p%40ss@127.0.0.1:{auth_server.port}"
    await mail.send(url, "Panel <noreply@panel.test>", Mail("ann@example.com", "Привет", "Тело\n"))
    (got,) = await auth_server.wait_for("ann@example.com")
    assert got.subject == "Привет"
    assert got.body == "Тело\n"
    assert got.message["From"] == "Panel <noreply@panel.test>"


async def test_the_outbox_keeps_a_mail_the_server_refused_until_the_worker_delivers_it(
    ctx: AppContext, settings: Settings, mailbox: Mailbox
) -> None:
    dead = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    mailer = Mailer(ctx.db, dead, "noreply@panel.test")
    async with ctx.db.transaction() as session:
        mail_id = await mail.queue(session, mailer, Mail("ann@example.com", "Hello", "Body"))
    await mail.drain()  # the attempt right after the commit failed
    async with ctx.db.session() as session:
        row = await session.get(OutgoingMail, mail_id)
        assert row is not None
        assert (row.sent_at, row.attempts, row.body) == (None, 1, "Body")
        assert row.last_error and row.next_attempt_at > utcnow()
    # Not due yet: the worker leaves it.
    assert await call_job(settings, ctx, "deliver_mail") == 0
    async with ctx.db.transaction() as session:
        await session.execute(
            update(OutgoingMail).values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
    # The worker reads MAIL_URL from the settings: the local server now.
    assert await call_job(settings, ctx, "deliver_mail") == 1
    (got,) = await mailbox.wait_for("ann@example.com")
    assert (got.subject, got.body) == ("Hello", "Body\n")
    async with ctx.db.session() as session:
        row = await session.get(OutgoingMail, mail_id)
        assert row is not None
        assert row.sent_at is not None and row.body == "" and row.attempts == 2
    assert await call_job(settings, ctx, "deliver_mail") == 0  # sent once


async def test_a_rolled_back_transaction_sends_nothing(ctx: AppContext, mailbox: Mailbox) -> None:
    mailer = Mailer(ctx.db, ctx.settings.mail_url, "noreply@panel.test")
    with pytest.raises(RuntimeError):
        async with ctx.db.transaction() as session:
            await mail.queue(session, mailer, Mail("ann@example.com", "Hello", "Body"))
            raise RuntimeError("the decision is undone")
    await mail.drain()
    async with ctx.db.session() as session:
        assert await session.scalar(select(func.count(OutgoingMail.id))) == 0
    assert mailbox.received == []


async def test_a_bad_mail_url_is_refused() -> None:
    with pytest.raises(ValueError, match="MAIL_URL"):
        await mail.send("http://nope", "a@b.c", Mail("x@y.z", "s", "b"))
