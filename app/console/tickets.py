"""The console's support inbox: tickets waiting longest first with their SLA age (how long
the customer has waited for an answer), filtered by status, category, assignee and age;
one ticket with its messages and internal notes, the orders it asks to review with their
upstream history, and what Support does: assign, answer (written or a canned answer, the
customer is mailed), add an internal note, change the status, and end an order's review
(no action, resend, a refund through the ledger, or completed). The review queue lists
every order under a Support review.

A refund on a review is the ledger's, exactly once, and bounded by the member's role: a
support agent refunds at most the owner's support refund limit (flows.review_tickets).
Every action is /admin/v1's, audited the same way, naming the member."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from app.console.listing import as_choice, as_decimal, as_id, as_int, shown, window
from app.console.render import (
    CONSOLE,
    N_,
    Failure,
    Permit,
    Who,
    csv_download,
    page,
    posted,
    redirect,
)
from app.db import utcnow
from app.errors import DomainError, IncorrectRequest
from app.flows import review_tickets
from app.http.paths import PathId
from app.http.problems import Problem
from app.orders import operator as orders
from app.pages.export import Cell
from app.staff import service as staff
from app.tickets import service as tickets
from app.tickets.models import CATEGORIES, RESOLUTIONS, TICKET_STATUSES, Ticket
from app.tickets.router import admin_ticket
from app.tickets.schemas import (
    AdminMessageOut,
    AssignIn,
    CannedIn,
    CannedOut,
    NoteIn,
    ResolutionOut,
    ResolvedOut,
    ResolveIn,
    StatusIn,
)

router = APIRouter()
Reader = Annotated[Who, Depends(Permit("tickets:read"))]
Writer = Annotated[Who, Depends(Permit("tickets:write"))]
Resolver = Annotated[Who, Depends(Permit("reviews:resolve"))]
Refusals = (DomainError, Problem, ValueError)

DONE = {
    "assigned": N_("The ticket is assigned."),
    "answered": N_("The answer is sent; the customer is mailed."),
    "noted": N_("The internal note is added."),
    "status": N_("The status is changed."),
    "resolved": N_("The review is resolved and the customer answered."),
    "canned": N_("The canned answer is saved."),
    "canned-removed": N_("The canned answer is removed."),
}
LIST_HEADER = ["ID", "Customer", "Subject", "Category", "Status", "Assignee", "Waiting since"]


def waited(ticket: Ticket) -> timedelta | None:
    """How long the customer has waited for an operator (None: not waiting)."""
    return utcnow() - ticket.waiting_since if ticket.waiting_since is not None else None


def age(who: Who, span: timedelta | None) -> str:
    if span is None:
        return ""
    minutes = int(span.total_seconds() // 60)
    if minutes < 60:
        return who._("%(n)s min", n=minutes)
    if minutes < 48 * 60:
        return who._("%(h)s h %(m)s min", h=minutes // 60, m=minutes % 60)
    return who._("%(n)s days", n=minutes // (24 * 60))


@router.get("/tickets")
async def ticket_list(
    who: Reader,
    status: str = "",
    category: str = "",
    assignee: str = "",
    waiting_minutes: str = "",
    format: str = "",
) -> Response:
    at = window(who.request.query_params.get("page"), format)
    minutes = as_int(waiting_minutes, 0, 10**7)
    mine = who.member.member.email
    where = tickets.TicketFilter(
        status=as_choice(status, TICKET_STATUSES),
        category=as_choice(category, CATEGORIES),
        assignee={"": None, "me": mine, "none": ""}.get(assignee, assignee[:200]),
        waiting_over=timedelta(minutes=minutes) if minutes is not None else None,
    )
    async with who.services.db.session() as session:
        found = await tickets.list_tickets(session, where, limit=at.limit, offset=at.offset)
    if at.csv:
        rows: list[list[Cell]] = [
            [t.id, t.user_id, t.subject, t.category, t.status, t.assignee, t.waiting_since]
            for t in found
        ]
        return csv_download(who, "tickets", LIST_HEADER, rows)
    return page(
        who,
        "tickets.html",
        listed=shown(found, at),
        ages={t.id: age(who, waited(t)) for t in found},
        late={t.id: (waited(t) or timedelta(0)) > timedelta(hours=24) for t in found},
        given={
            "status": status,
            "category": category,
            "assignee": assignee,
            "waiting_minutes": waiting_minutes,
        },
        statuses=TICKET_STATUSES,
        categories=CATEGORIES,
    )


@router.get("/reviews")
async def review_queue(who: Reader) -> Response:
    """Orders under a Support review (ToS 2.5), the oldest review first."""
    async with who.services.db.session() as session:
        found = await orders.search_orders(
            session,
            orders.OrderSearch(under_review=True),
            limit=500,
            offset=0,
            stuck_after_seconds=who.services.settings.stuck_after_seconds,
        )
    found.sort(key=lambda o: o.id)
    return page(who, "reviews.html", orders=found)


async def ticket_page(
    who: Who, ticket_id: int, failure: Failure | None = None, done: str = ""
) -> Response:
    async with who.services.db.session() as session:
        ticket = await tickets.get_ticket(session, ticket_id)
        values = {
            "ticket": ticket,
            "messages": await tickets.messages_of(session, ticket_id, with_internal=True),
            "reviewed": await tickets.reviewed_orders(session, ticket),
            "resolutions": await tickets.resolutions_of(session, ticket_id),
            "canned": await tickets.list_canned(session),
            "refund_limit": await staff.refund_limit(session, who.principal),
        }
    return page(
        who,
        "ticket.html",
        failure.status if failure else 200,
        waited=age(who, waited(ticket)),
        statuses=TICKET_STATUSES,
        decisions=RESOLUTIONS,
        error=failure.message if failure else "",
        done=who._(DONE[done]) if done in DONE else "",
        **values,
    )


@router.get("/tickets/{ticket_id}")
async def ticket_detail(who: Reader, ticket_id: PathId, done: str = "") -> Response:
    return await ticket_page(who, ticket_id, done=done)


def back(who: Who, ticket_id: int, done: str) -> Response:
    return redirect(who, f"{CONSOLE}/tickets/{ticket_id}?done={done}")


@router.post("/tickets/{ticket_id}/assign")
async def assign(who: Writer, ticket_id: PathId) -> Response:
    fields = await posted(who)
    chosen = fields.get("assignee", "").strip()
    try:
        body = AssignIn.model_validate(
            {"assignee": who.member.member.email if chosen == "me" else chosen or None}
        )
        async with who.acting() as (tx, audit):
            before = await admin_ticket(tx, await tickets.get_ticket(tx, ticket_id))
            after = await admin_ticket(tx, await tickets.assign(tx, ticket_id, body.assignee))
            await audit("ticket.assign", "ticket", ticket_id, before=before, after=after)
    except Refusals as exc:
        return await ticket_page(who, ticket_id, who.error(exc))
    return back(who, ticket_id, "assigned")


@router.post("/tickets/{ticket_id}/reply")
async def reply(who: Writer, ticket_id: PathId) -> Response:
    """An answer: the written message, or (none written) the chosen canned answer."""
    fields = await posted(who)
    text = fields.get("message", "").strip()
    canned_id = as_id(fields.get("canned_id"))
    try:
        async with who.acting() as (tx, audit):
            if not text and canned_id is not None:
                text = (await tickets.get_canned(tx, canned_id)).body
            if not text:
                raise IncorrectRequest(N_("Write an answer or choose a canned one."))
            body = NoteIn.model_validate({"message": text})  # the same limits as a reply
            message = await tickets.operator_answers(
                tx, tickets.Notify.of(who.services), ticket_id, audit.actor, body.message
            )
            out = AdminMessageOut.model_validate(message, from_attributes=True)
            await audit("ticket.reply", "ticket", ticket_id, after=out)
    except Refusals as exc:
        return await ticket_page(who, ticket_id, who.error(exc))
    return back(who, ticket_id, "answered")


@router.post("/tickets/{ticket_id}/note")
async def note(who: Writer, ticket_id: PathId) -> Response:
    fields = await posted(who)
    try:
        body = NoteIn.model_validate({"message": fields.get("message", "")})
        async with who.acting() as (tx, audit):
            message = await tickets.add_note(tx, ticket_id, audit.actor, body.message)
            out = AdminMessageOut.model_validate(message, from_attributes=True)
            await audit("ticket.note", "ticket", ticket_id, after=out)
    except Refusals as exc:
        return await ticket_page(who, ticket_id, who.error(exc))
    return back(who, ticket_id, "noted")


@router.post("/tickets/{ticket_id}/status")
async def set_status(who: Writer, ticket_id: PathId) -> Response:
    fields = await posted(who)
    try:
        body = StatusIn.model_validate({"status": fields.get("status", "")})
        async with who.acting() as (tx, audit):
            before = await admin_ticket(tx, await tickets.get_ticket(tx, ticket_id))
            after = await admin_ticket(tx, await tickets.set_status(tx, ticket_id, body.status))
            await audit("ticket.status", "ticket", ticket_id, before=before, after=after)
    except Refusals as exc:
        return await ticket_page(who, ticket_id, who.error(exc))
    return back(who, ticket_id, "status")


def amount_of(text: str | None) -> Decimal | None:
    if not (text or "").strip():
        return None
    amount = as_decimal(text)
    if amount is None:
        raise ValueError(N_("Enter an amount: a number with at most 8 decimals."))
    return amount


@router.post("/tickets/{ticket_id}/resolve")
async def resolve(who: Resolver, ticket_id: PathId) -> Response:
    """End one order's review: the decision, the ledger's refund (bounded by the member's
    refund limit), the answer to the customer; audited as /admin/v1 audits it."""
    fields = await posted(who)
    try:
        body = ResolveIn.model_validate(
            {
                "order_id": as_id(fields.get("order_id")),
                "action": fields.get("action", ""),
                "amount": amount_of(fields.get("amount")),
                "message": fields.get("message", "").strip() or None,
            }
        )
        async with who.acting() as (tx, audit):
            done = await review_tickets.resolve_as(
                tx,
                who.services.jobs,
                tickets.Notify.of(who.services),
                who.principal,
                ticket_id,
                order_id=body.order_id,
                action=body.action,
                amount=body.amount,
                message=body.message,
            )
            out = ResolvedOut(
                resolution=ResolutionOut.model_validate(done.resolution, from_attributes=True),
                ticket=await admin_ticket(tx, await tickets.get_ticket(tx, ticket_id)),
            )
            await audit("ticket.resolve", "ticket", ticket_id, after=out)
    except Refusals as exc:
        return await ticket_page(who, ticket_id, who.error(exc))
    return back(who, ticket_id, "resolved")


# Canned answers ---------------------------------------------------------------------------


async def canned_page(who: Who, failure: Failure | None = None, done: str = "") -> Response:
    async with who.services.db.session() as session:
        answers = await tickets.list_canned(session)
    return page(
        who,
        "canned.html",
        failure.status if failure else 200,
        answers=answers,
        error=failure.message if failure else "",
        done=who._(DONE[done]) if done in DONE else "",
    )


@router.get("/canned")
async def canned_list(who: Reader, done: str = "") -> Response:
    return await canned_page(who, done=done)


async def save_canned(who: Who, canned_id: int | None) -> Response:
    fields = await posted(who)
    try:
        body = CannedIn.model_validate(
            {"title": fields.get("title", ""), "body": fields.get("body", "")}
        )
        async with who.acting() as (tx, audit):
            before = (
                CannedOut.model_validate(
                    await tickets.get_canned(tx, canned_id), from_attributes=True
                )
                if canned_id is not None
                else None
            )
            row = await tickets.save_canned(tx, canned_id, body.model_dump())
            out = CannedOut.model_validate(row, from_attributes=True)
            action = "canned_answer.create" if before is None else "canned_answer.update"
            await audit(action, "canned_answer", row.id, before=before, after=out)
    except Refusals as exc:
        return await canned_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/canned?done=canned")


@router.post("/canned")
async def add_canned(who: Writer) -> Response:
    return await save_canned(who, None)


@router.post("/canned/{canned_id}")
async def change_canned(who: Writer, canned_id: PathId) -> Response:
    return await save_canned(who, canned_id)


@router.post("/canned/{canned_id}/remove")
async def remove_canned(who: Writer, canned_id: PathId) -> Response:
    await posted(who)
    try:
        async with who.acting() as (tx, audit):
            row = await tickets.delete_canned(tx, canned_id)
            out = CannedOut.model_validate(row, from_attributes=True)
            await audit("canned_answer.delete", "canned_answer", canned_id, before=out)
    except Refusals as exc:
        return await canned_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/canned?done=canned-removed")
