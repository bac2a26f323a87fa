"""The mails of support, plain text: the customer's when an operator answers, the
operators' when a ticket is opened (SUPPORT_NOTIFY_EMAIL)."""

from __future__ import annotations

from typing import Protocol

from app.mail.service import Mail


class TicketLike(Protocol):
    id: int
    subject: str
    category: str
    user_id: int


ANSWERED = {
    "en": (
        "Support answered your ticket #{id}",
        "Support answered your ticket #{id} ({subject}):\n\n{body}\n\nRead and reply: {link}\n",
    ),
    "ru": (
        "Поддержка ответила на ваше обращение #{id}",
        "Поддержка ответила на ваше обращение #{id} ({subject}):\n\n{body}\n\n"
        "Прочитать и ответить: {link}\n",
    ),
}


def answered_mail(
    to: str, ticket: TicketLike, body: str, language: str = "en", link: str = ""
) -> Mail:
    """The customer's mail, in their language, with the link to the ticket's page; the
    texts are inserted as they are (the mail is plain text)."""
    subject, text = ANSWERED.get(language) or ANSWERED["en"]
    values = {"id": ticket.id, "subject": ticket.subject, "body": body, "link": link}
    return Mail(to=to, subject=subject.format(**values), body=text.format(**values))


def new_ticket_mail(to: str, ticket: TicketLike, body: str) -> Mail:
    return Mail(
        to=to,
        subject=f"New support ticket #{ticket.id} ({ticket.category})",
        body=(
            f"User {ticket.user_id} opened ticket #{ticket.id} ({ticket.category}): "
            f"{ticket.subject}\n\n{body}\n\nGET /admin/v1/tickets/{ticket.id}\n"
        ),
    )
