"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it receives."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import socket
from dataclasses import dataclass, field
from email.message import EmailMessage, Message

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    to: list[str]
    message: Message

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        assert isinstance(self.message, EmailMessage)
        content = self.message.get_content()
        assert isinstance(content, str)
        return content.replace("\r\n", "\n")

    def token(self) -> str:
        """The token the mail carries (the line after "token")."""
        found = re.search(r"token=([A-Za-z0-9_-]+)", self.body)
        assert found is not None, self.body
        return found.group(1)


@dataclass
class Mailbox:
    port: int
    received: list[Received] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else (content or "").encode()
        self.received.append(
            Received(
                list(envelope.rcpt_tos), email.message_from_bytes(raw, policy=email.policy.default)
            )
        )
        return "250 OK"

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.to]

    async def wait_for(self, address: str, count: int = 1, within: float = 10.0) -> list[Received]:
        """The first `count` mails to `address`, waiting for them to arrive."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(self.to(address)) < count:
            assert loop.time() < deadline, f"no mail to {address}: {self.received}"
            await asyncio.sleep(0.02)
        return self.to(address)[:count]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server() -> tuple[Controller, Mailbox]:
    box = Mailbox(port=free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    return controller, box
