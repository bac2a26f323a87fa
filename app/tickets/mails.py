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


def answered_mail(to: str, ticket: TicketLike, body: str) -> Mail:
    return Mail(
        to=to,
        subject=f"Support answered your ticket #{ticket.id}",
        body=(
            f"Support answered your ticket #{ticket.id} ({ticket.subject}):\n\n{body}\n\n"
            f"Read and reply with GET /client/v1/tickets/{ticket.id}.\n"
        ),
    )


def new_ticket_mail(to: str, ticket: TicketLike, body: str) -> Mail:
    return Mail(
        to=to,
        subject=f"New support ticket #{ticket.id} ({ticket.category})",
        body=(
            f"User {ticket.user_id} opened ticket #{ticket.id} ({ticket.category}): "
            f"{ticket.subject}\n\n{body}\n\nGET /admin/v1/tickets/{ticket.id}\n"
        ),
    )
