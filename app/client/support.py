"""The customer's support over /client/v1: their tickets, a ticket's thread, opening,
writing in and closing one, and sending an order to Support for review (ToS 2.5). Each
action is the command of app/flows/commands/support.py; a blocked customer still reads
their tickets (`ReadingCustomer`) but writes nothing. What a customer sees of a ticket is
app/tickets/views.py: never an internal note."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.customers.router import CurrentCustomer, ReadingCustomer
from app.db import MAX_ID
from app.flows.commands import support
from app.http.context import ServicesDep
from app.http.paths import PathId
from app.http.tx import Reader, Tx
from app.tickets import service as tickets
from app.tickets.schemas import MessageIn, TicketDetailOut, TicketIn, TicketPage
from app.tickets.views import customer_detail, ticket_out, under_review

router = APIRouter(tags=["client: support"])


@router.get("/tickets", summary="Your support tickets, newest first")
async def list_my_tickets(
    db: Reader,
    me: ReadingCustomer,
    cursor: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TicketPage:
    rows = await tickets.list_own_tickets(db, me.user_id, before=cursor, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    reviewed = await under_review(db, [t.id for t in rows])
    return TicketPage(
        tickets=[ticket_out(t, reviewed[t.id]) for t in rows],
        next_cursor=rows[-1].id if more and rows else None,
    )


@router.post(
    "/tickets",
    status_code=201,
    summary="Open a support ticket",
    description="A ticket of category `order` puts the orders it names under review "
    "(ToS 2.5): until the review ends they are neither canceled nor refilled, and no new "
    "order goes to the same link and service.",
)
async def open_ticket(
    tx: Tx, services: ServicesDep, me: CurrentCustomer, body: TicketIn
) -> TicketDetailOut:
    ticket = await support.open_ticket(
        tx,
        services,
        me.user_id,
        subject=body.subject,
        category=body.category,
        message=body.message,
        order_ids=body.orders,
    )
    return await customer_detail(tx, ticket)


@router.get("/tickets/{ticket_id}", summary="A ticket with its messages")
async def get_my_ticket(db: Reader, me: ReadingCustomer, ticket_id: PathId) -> TicketDetailOut:
    return await customer_detail(db, await tickets.own_ticket(db, me.user_id, ticket_id))


@router.post(
    "/tickets/{ticket_id}/messages",
    status_code=201,
    summary="Write in a ticket",
    description="A closed ticket reopens within 7 days of its closing; later, open a new one.",
)
async def write(tx: Tx, me: CurrentCustomer, ticket_id: PathId, body: MessageIn) -> TicketDetailOut:
    await support.reply_ticket(tx, me.user_id, ticket_id, body.message)
    return await customer_detail(tx, await tickets.own_ticket(tx, me.user_id, ticket_id))


@router.post(
    "/tickets/{ticket_id}/close",
    summary="Close a ticket",
    description="The reviews it asked for end without a decision.",
)
async def close(tx: Tx, me: CurrentCustomer, ticket_id: PathId) -> TicketDetailOut:
    return await customer_detail(tx, await support.close_ticket(tx, me.user_id, ticket_id))


@router.post(
    "/orders/{order_id}/review",
    status_code=201,
    summary="Send an order to Support for review (ToS 2.5)",
    description="Opens a ticket of category `order` on the order. Until the review ends "
    "the order is neither canceled nor refilled, and no new order goes to its link and "
    "service.",
)
async def request_review(
    tx: Tx, services: ServicesDep, me: CurrentCustomer, order_id: PathId, body: MessageIn
) -> TicketDetailOut:
    ticket = await support.request_review(tx, services, me.user_id, order_id, body.message)
    return await customer_detail(tx, ticket)
