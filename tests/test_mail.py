"""The mail module against a real SMTP server on 127.0.0.1 (aiosmtpd), with login."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from app.mail import service as mail
from app.mail.service import Mail
from tests.support.mail import Mailbox, free_port


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


async def test_an_unreachable_server_is_logged_not_raised_in_the_background(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(OSError):
        await mail.send(url, "noreply@panel.test", Mail("ann@example.com", "s", "b"))
    mail.send_soon(url, "noreply@panel.test", Mail("ann@example.com", "s", "b"))
    await mail.drain()
    assert [r.getMessage() for r in caplog.records].count("mail not sent") == 1


async def test_a_bad_mail_url_is_refused() -> None:
    with pytest.raises(ValueError, match="MAIL_URL"):
        await mail.send("http://nope", "a@b.c", Mail("x@y.z", "s", "b"))
