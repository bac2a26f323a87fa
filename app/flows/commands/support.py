"""Support: open a ticket, write in it, close it, and send an order to Support for review
(ToS 2.5: until the review ends the order is neither canceled nor refilled, and no new
order goes to its link and service). The operators are told of a new ticket and the
customer of an answer through the mail outbox, in the same transaction."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from app.http.context import Services
from app.tickets import service as tickets
from app.tickets.models import Ticket, TicketMessage

WRAPS = (
    tickets.open_ticket,
    tickets.customer_writes,
    tickets.customer_closes,
    tickets.request_review,
)


async def open_ticket(
    tx: AsyncSession,
    services: Services,
    user_id: int,
    *,
    subject: str,
    category: str,
    message: str,
    order_ids: Sequence[int] = (),
) -> Ticket:
    """A new ticket with its first message; one of category `order` puts the orders it
    names under review."""
    async with tx.begin_nested():
        return await tickets.open_ticket(
            tx,
            tickets.Notify.of(services),
            user_id,
            subject=subject,
            category=category,
            message=message,
            order_ids=order_ids,
        )


async def reply_ticket(
    tx: AsyncSession, user_id: int, ticket_id: int, message: str
) -> TicketMessage:
    """The customer writes in their ticket (a closed one reopens within 7 days)."""
    async with tx.begin_nested():
        return await tickets.customer_writes(tx, user_id, ticket_id, message)


async def close_ticket(tx: AsyncSession, user_id: int, ticket_id: int) -> Ticket:
    """The customer closes their ticket; the reviews it asked for end undecided."""
    async with tx.begin_nested():
        return await tickets.customer_closes(tx, user_id, ticket_id)


async def request_review(
    tx: AsyncSession, services: Services, user_id: int, order_id: int, message: str
) -> Ticket:
    """A ticket of category `order` on one of the user's orders."""
    async with tx.begin_nested():
        return await tickets.request_review(
            tx, tickets.Notify.of(services), user_id, order_id, message
        )
