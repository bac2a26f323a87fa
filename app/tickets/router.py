"""Support tickets over HTTP for the operators (`admin_router`, under /admin/v1); the
customer's endpoints are /client/v1's (app/client/support.py). Every answer is JSON; no
text is ever rendered as markup. How a review ends is the flow
app/flows/review_tickets.py, routed in app/flows/router.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import IncorrectRequest
from app.http.audit import Audit
from app.http.auth import require
from app.http.context import ServicesDep
from app.http.paths import Limit, Offset, PathId, QueryId
from app.http.tx import Reader, Tx
from app.orders.schemas import EventOut, OrderOut
from app.tickets import service as tickets
from app.tickets.models import Ticket
from app.tickets.schemas import (
    AdminMessageOut,
    AdminReplyIn,
    AdminTicketDetailOut,
    AdminTicketOut,
    AssignIn,
    CannedIn,
    CannedOut,
    Category,
    NoteIn,
    ResolutionOut,
    ReviewedOrderOut,
    Status,
    StatusIn,
    SupportReportOut,
)
from app.tickets.views import ticket_out, under_review

admin_router = APIRouter(tags=["support"])


def admin_out(ticket: Ticket, reviewed: list[int]) -> AdminTicketOut:
    return AdminTicketOut(
        **ticket_out(ticket, reviewed).model_dump(),
        user_id=ticket.user_id,
        assignee=ticket.assignee,
        waiting_since=ticket.waiting_since,
        first_response_at=ticket.first_response_at,
    )


async def admin_ticket(session: AsyncSession, ticket: Ticket) -> AdminTicketOut:
    return admin_out(ticket, (await under_review(session, [ticket.id]))[ticket.id])


async def admin_detail(session: AsyncSession, ticket: Ticket) -> AdminTicketDetailOut:
    messages = await tickets.messages_of(session, ticket.id, with_internal=True)
    orders = await tickets.reviewed_orders(session, ticket)
    resolutions = await tickets.resolutions_of(session, ticket.id)
    return AdminTicketDetailOut(
        **(await admin_ticket(session, ticket)).model_dump(),
        messages=[AdminMessageOut.model_validate(m, from_attributes=True) for m in messages],
        orders_detail=[
            ReviewedOrderOut(
                **OrderOut.model_validate(o).model_dump(),
                review_ticket_id=o.review_ticket_id,
                upstream_history=[EventOut.model_validate(e) for e in events],
            )
            for o, events in orders
        ],
        resolutions=[ResolutionOut.model_validate(r, from_attributes=True) for r in resolutions],
    )


@admin_router.get(
    "/tickets",
    dependencies=[require("tickets:read")],
    summary="Support tickets, those waiting longest first",
    description="Filters: `status`, `category`, `assignee` (empty: unassigned), `user_id`, "
    "`waiting_minutes` (waiting for an operator at least this long).",
)
async def list_tickets(
    db: Reader,
    limit: Limit = 100,
    offset: Offset = 0,
    status: Status | None = None,
    category: Category | None = None,
    assignee: Annotated[str | None, Query(max_length=200)] = None,
    user_id: QueryId | None = None,
    waiting_minutes: Annotated[int | None, Query(ge=0, le=10**7)] = None,
) -> list[AdminTicketOut]:
    where = tickets.TicketFilter(
        status=status,
        category=category,
        assignee=assignee,
        user_id=user_id,
        waiting_over=timedelta(minutes=waiting_minutes) if waiting_minutes is not None else None,
    )
    rows = await tickets.list_tickets(db, where, limit=limit, offset=offset)
    reviewed = await under_review(db, [t.id for t in rows])
    return [admin_out(t, reviewed[t.id]) for t in rows]


@admin_router.get(
    "/tickets/{ticket_id}",
    dependencies=[require("tickets:read")],
    summary="A ticket: messages and internal notes, and the orders it names with their "
    "full upstream history",
)
async def get_ticket(db: Reader, ticket_id: PathId) -> AdminTicketDetailOut:
    return await admin_detail(db, await tickets.get_ticket(db, ticket_id))


@admin_router.post(
    "/tickets/{ticket_id}/assign",
    dependencies=[require("tickets:write")],
    summary="Assign a ticket (null: nobody)",
)
async def assign(tx: Tx, audit: Audit, ticket_id: PathId, body: AssignIn) -> AdminTicketOut:
    before = await admin_ticket(tx, await tickets.get_ticket(tx, ticket_id))
    after = await admin_ticket(tx, await tickets.assign(tx, ticket_id, body.assignee))
    await audit("ticket.assign", "ticket", ticket_id, before=before, after=after)
    return after


@admin_router.post(
    "/tickets/{ticket_id}/messages",
    dependencies=[require("tickets:write")],
    status_code=201,
    summary="Answer a ticket (the customer is mailed)",
    description="`message`, or `canned_id` to send a canned answer.",
)
async def reply(
    tx: Tx, audit: Audit, services: ServicesDep, ticket_id: PathId, body: AdminReplyIn
) -> AdminMessageOut:
    if (body.message is None) == (body.canned_id is None):
        raise IncorrectRequest("Send either `message` or `canned_id`")
    text = body.message or (await tickets.get_canned(tx, body.canned_id or 0)).body
    notify = tickets.Notify.of(services)
    message = await tickets.operator_answers(tx, notify, ticket_id, audit.actor, text)
    out = AdminMessageOut.model_validate(message, from_attributes=True)
    await audit("ticket.reply", "ticket", ticket_id, after=out)
    return out


@admin_router.post(
    "/tickets/{ticket_id}/notes",
    dependencies=[require("tickets:write")],
    status_code=201,
    summary="Add an internal note (never shown to the customer)",
)
async def note(tx: Tx, audit: Audit, ticket_id: PathId, body: NoteIn) -> AdminMessageOut:
    message = await tickets.add_note(tx, ticket_id, audit.actor, body.message)
    out = AdminMessageOut.model_validate(message, from_attributes=True)
    await audit("ticket.note", "ticket", ticket_id, after=out)
    return out


@admin_router.post(
    "/tickets/{ticket_id}/status",
    dependencies=[require("tickets:write")],
    summary="Change a ticket's status",
    description="Closing needs its order reviews resolved first (409).",
)
async def set_status(tx: Tx, audit: Audit, ticket_id: PathId, body: StatusIn) -> AdminTicketOut:
    before = await admin_ticket(tx, await tickets.get_ticket(tx, ticket_id))
    after = await admin_ticket(tx, await tickets.set_status(tx, ticket_id, body.status))
    await audit("ticket.status", "ticket", ticket_id, before=before, after=after)
    return after


@admin_router.get(
    "/canned-answers", dependencies=[require("tickets:read")], summary="The canned answers"
)
async def list_canned(db: Reader) -> list[CannedOut]:
    return [
        CannedOut.model_validate(c, from_attributes=True) for c in await tickets.list_canned(db)
    ]


@admin_router.post(
    "/canned-answers",
    dependencies=[require("tickets:write")],
    status_code=201,
    summary="Add a canned answer",
)
async def add_canned(tx: Tx, audit: Audit, body: CannedIn) -> CannedOut:
    row = await tickets.save_canned(tx, None, body.model_dump())
    out = CannedOut.model_validate(row, from_attributes=True)
    await audit("canned_answer.create", "canned_answer", row.id, after=out)
    return out


@admin_router.put(
    "/canned-answers/{canned_id}",
    dependencies=[require("tickets:write")],
    summary="Change a canned answer",
)
async def change_canned(tx: Tx, audit: Audit, canned_id: PathId, body: CannedIn) -> CannedOut:
    before = CannedOut.model_validate(await tickets.get_canned(tx, canned_id), from_attributes=True)
    row = await tickets.save_canned(tx, canned_id, body.model_dump())
    out = CannedOut.model_validate(row, from_attributes=True)
    await audit("canned_answer.update", "canned_answer", canned_id, before=before, after=out)
    return out


@admin_router.delete(
    "/canned-answers/{canned_id}",
    dependencies=[require("tickets:write")],
    summary="Remove a canned answer",
)
async def remove_canned(tx: Tx, audit: Audit, canned_id: PathId) -> CannedOut:
    out = CannedOut.model_validate(await tickets.delete_canned(tx, canned_id), from_attributes=True)
    await audit("canned_answer.delete", "canned_answer", canned_id, before=out)
    return out


@admin_router.get(
    "/reports/support",
    dependencies=[require("reports:read")],
    tags=["reports"],
    summary="Support measures over the tickets created in [from, to)",
    description="Counts, tickets open now, first-response and resolution times (seconds).",
)
async def support_report(
    db: Reader,
    since: Annotated[datetime, Query(alias="from")],
    until: Annotated[datetime, Query(alias="to")],
) -> SupportReportOut:
    since, until = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (since, until))
    if until <= since:
        raise IncorrectRequest("`to` must be after `from`")
    return SupportReportOut.model_validate(await tickets.report(db, since, until))
