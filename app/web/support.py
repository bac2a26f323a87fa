"""Support pages: the customer's tickets (newest first, in pages), a ticket's thread with
the reply form and the close button, a new ticket (subject, category, message, the orders
it is about) and the order review request (ToS 2.5) reachable from an order's page. Every
action is the command /client/v1 runs too (app/flows/commands/support.py), in the
request's transaction; what the customer sees of a ticket is what that API answers
(app/tickets/views.py: never an internal note), and every text is shown escaped, as plain
text."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import DomainError
from app.flows.commands import support
from app.http.context import ServicesDep
from app.http.paths import PathId
from app.http.tx import Reader, Tx
from app.orders import service as orders
from app.tickets import service as tickets
from app.tickets.models import CATEGORIES, CLOSED, MESSAGE_MAX, REVIEW_CATEGORY, SUBJECT_MAX
from app.tickets.schemas import MessageIn, TicketIn
from app.tickets.views import customer_detail, ticket_out, under_review
from app.web.forms import posted
from app.web.render import Visitor, page, redirect, refusal, signed_in

router = APIRouter()
Me = Annotated[Visitor, Depends(signed_in)]
PAGE_SIZE = 20
ORDER_IDS = re.compile(r"[\s,;]+")
# What a field that fails the API's schema is told (the API answers "Invalid request").
FIELD_HINTS = {
    "subject": "Write a subject of at most %(n)s characters",
    "message": "Write a message of at most %(n)s characters",
}
LIMITS = {"subject": SUBJECT_MAX, "message": MESSAGE_MAX}
# The fields of the new ticket form a refusal may belong to (app/errors.py `field`).
TICKET_FIELDS = frozenset({"subject", "category", "message", "orders"})


def schema_error(who: Visitor, exc: ValidationError) -> tuple[str, str]:
    """(message, field) for the first field the API's schema refused."""
    where = str(exc.errors()[0]["loc"][0]) if exc.errors() else ""
    if where in FIELD_HINTS:
        return who._(FIELD_HINTS[where], n=LIMITS[where]), where
    if where == "orders":
        return who.error("Incorrect order ID"), "orders"
    return who.error("Incorrect category"), "category"


def order_ids(text: str) -> list[int] | None:
    """The order ids typed into the form (commas or spaces between), or None if one is
    not a number."""
    parts = [p for p in ORDER_IDS.split(text.strip()) if p]
    if not all(p.isdigit() and len(p) < 19 for p in parts):
        return None
    return [int(p) for p in parts]


@router.get("/tickets")
async def list_tickets(who: Me, db: Reader, before: int = 0) -> Response:
    rows = await tickets.list_own_tickets(
        db, who.me.user_id, before=before or None, limit=PAGE_SIZE + 1
    )
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    reviewed = await under_review(db, [t.id for t in rows])
    shown = [ticket_out(t, reviewed[t.id]) for t in rows]
    return page(
        who,
        "tickets.html",
        tickets=shown,
        before=before,
        next_before=rows[-1].id if more and rows else None,
    )


def new_ticket_page(who: Visitor, status: int = 200, **values: object) -> Response:
    return page(
        who,
        "ticket_new.html",
        status,
        categories=CATEGORIES,
        subject_max=SUBJECT_MAX,
        message_max=MESSAGE_MAX,
        **values,
    )


@router.get("/tickets/new")
async def new_ticket(who: Me, order: int = 0) -> Response:
    form = {"orders": str(order), "category": REVIEW_CATEGORY} if order > 0 else {}
    return new_ticket_page(who, form=form)


@router.post("/tickets/new")
async def open_ticket(who: Me, tx: Tx, services: ServicesDep) -> Response:
    fields = await posted(who)
    named = order_ids(fields.get("orders", ""))
    if named is None:
        return new_ticket_page(
            who, 422, form=fields, error=who.error("Incorrect order ID"), error_field="orders"
        )
    try:
        body = TicketIn(
            subject=fields.get("subject", ""),
            category=fields.get("category", ""),
            message=fields.get("message", ""),
            orders=named,
        )
    except ValidationError as exc:
        error, where = schema_error(who, exc)
        return new_ticket_page(who, 422, form=fields, error=error, error_field=where)
    try:
        ticket = await support.open_ticket(
            tx,
            services,
            who.me.user_id,
            subject=body.subject,
            category=body.category,
            message=body.message,
            order_ids=body.orders,
        )
    except DomainError as exc:
        return new_ticket_page(who, 422, form=fields, **refusal(who, exc, TICKET_FIELDS))
    return redirect(who, f"/web/tickets/{ticket.id}?done=opened")


async def thread_page(
    who: Visitor, db: AsyncSession, ticket_id: int, status: int = 200, **values: object
) -> Response:
    try:
        ticket = await tickets.own_ticket(db, who.me.user_id, ticket_id)
    except DomainError as exc:
        return page(who, "message.html", 404, message=who.error(exc.message))
    shown = await customer_detail(db, ticket)
    return page(
        who,
        "ticket.html",
        status,
        ticket=shown,
        closed=shown.status == CLOSED,
        message_max=MESSAGE_MAX,
        **values,
    )


def _message(who: Visitor, fields: dict[str, str]) -> tuple[str, MessageIn | None, str | None]:
    """The posted message as typed, read by the API's schema, or the error to show."""
    text = fields.get("message", "")
    try:
        return text, MessageIn(message=text), None
    except ValidationError as exc:
        return text, None, schema_error(who, exc)[0]


@router.get("/tickets/{ticket_id}")
async def thread(who: Me, db: Reader, ticket_id: PathId, done: str = "") -> Response:
    return await thread_page(who, db, ticket_id, done=done[:40])


@router.post("/tickets/{ticket_id}/messages")
async def reply(who: Me, tx: Tx, ticket_id: PathId) -> Response:
    text, body, error = _message(who, await posted(who))
    if body is None:
        return await thread_page(who, tx, ticket_id, 422, error=error, text=text)
    try:
        await support.reply_ticket(tx, who.me.user_id, ticket_id, body.message)
    except DomainError as exc:
        return await thread_page(who, tx, ticket_id, 422, error=who.error(exc.message), text=text)
    return redirect(who, f"/web/tickets/{ticket_id}?done=sent#messages")


@router.post("/tickets/{ticket_id}/close")
async def close(who: Me, tx: Tx, ticket_id: PathId) -> Response:
    await posted(who)
    try:
        await support.close_ticket(tx, who.me.user_id, ticket_id)
    except DomainError as exc:
        return page(who, "message.html", 404, message=who.error(exc.message))
    return redirect(who, f"/web/tickets/{ticket_id}?done=closed")


async def review_page(
    who: Visitor, db: AsyncSession, order_id: int, status: int = 200, **values: object
) -> Response:
    try:
        order = await orders.get_own_order(db, who.me.user_id, order_id)
    except DomainError as exc:
        return page(who, "message.html", 404, message=who.error(exc.message))
    return page(who, "order_review.html", status, order=order, message_max=MESSAGE_MAX, **values)


@router.get("/orders/{order_id}/review")
async def review_form(who: Me, db: Reader, order_id: PathId) -> Response:
    return await review_page(who, db, order_id)


@router.post("/orders/{order_id}/review")
async def request_review(who: Me, tx: Tx, services: ServicesDep, order_id: PathId) -> Response:
    text, body, error = _message(who, await posted(who))
    if body is None:
        return await review_page(who, tx, order_id, 422, error=error, text=text)
    try:
        ticket = await support.request_review(tx, services, who.me.user_id, order_id, body.message)
    except DomainError as exc:
        return await review_page(who, tx, order_id, 422, error=who.error(exc.message), text=text)
    return redirect(who, f"/web/tickets/{ticket.id}?done=review")
