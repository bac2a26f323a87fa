"""What a customer and an operator see of a ticket: the ticket with the orders it holds
under review, and, for the customer, its thread without the internal notes (never who
answered). Read by /client/v1, the storefront and /admin/v1 alike."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.orders.models import Order
from app.tickets import service as tickets
from app.tickets.models import Ticket
from app.tickets.schemas import MessageOut, TicketDetailOut, TicketOut


async def under_review(session: AsyncSession, ticket_ids: list[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {t: [] for t in ticket_ids}
    rows = await session.execute(
        select(Order.review_ticket_id, Order.id)
        .where(Order.review_ticket_id.in_(ticket_ids))
        .order_by(Order.id)
    )
    for ticket_id, order_id in rows:
        if ticket_id is not None:
            found[ticket_id].append(order_id)
    return found


def ticket_out(ticket: Ticket, reviewed: list[int]) -> TicketOut:
    return TicketOut(
        id=ticket.id,
        subject=ticket.subject,
        category=ticket.category,
        status=ticket.status,
        orders=list(ticket.order_ids),
        under_review=reviewed,
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        closed_at=ticket.closed_at,
    )


async def customer_detail(session: AsyncSession, ticket: Ticket) -> TicketDetailOut:
    """What the customer sees of a ticket: never an internal note, never who answered."""
    reviewed = (await under_review(session, [ticket.id]))[ticket.id]
    messages = await tickets.messages_of(session, ticket.id, with_internal=False)
    return TicketDetailOut(
        **ticket_out(ticket, reviewed).model_dump(),
        messages=[
            MessageOut(id=m.id, author=m.author, body=m.body, created_at=m.created_at)
            for m in messages
        ],
    )
