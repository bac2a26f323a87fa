"""Support tickets: customers open them, write and close them; operators list, assign,
answer (also from canned answers), annotate and change their status. Ticket text is
plain text kept as given: nothing here or in any front end renders it as markup.

Order reviews (ToS 2.5) start here: a review sets the order's `review_ticket_id` by a
conditional update on the locked row, so a cancel or refill deciding meanwhile either
waits for it and is refused, or ends first. How a review ends is in
app/flows/review_tickets.py (it moves money and talks upstream).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.customers.models import CustomerLogin
from app.db import utcnow
from app.errors import Conflict, IncorrectRequest, NotFound
from app.http.context import Services
from app.mail import service as mail
from app.metrics import SUPPORT_FIRST_RESPONSE, SUPPORT_RESOLUTION
from app.orders.models import Order, UpstreamEvent
from app.orders.service import get_own_order
from app.tickets.mails import answered_mail, new_ticket_mail
from app.tickets.models import (
    ANSWERED,
    CATEGORIES,
    CLOSED,
    CUSTOMER,
    OPEN,
    OPERATOR,
    REOPEN_DAYS,
    REVIEW_CATEGORY,
    TICKET_STATUSES,
    CannedAnswer,
    ReviewResolution,
    Ticket,
    TicketMessage,
)


class TicketNotFound(NotFound):
    http_status = 404
    message = "Ticket not found"


class TicketClosedForGood(Conflict):
    http_status = 409
    field = "message"
    message = "This ticket was closed more than 7 days ago: open a new ticket"


class AlreadyUnderReview(Conflict):
    http_status = 409
    field = "orders"
    message = "This order is already under review by Support"


class ReviewsPending(Conflict):
    http_status = 409
    message = "Resolve the order reviews of this ticket before closing it"


class CannedAnswerNotFound(NotFound):
    http_status = 404
    message = "Canned answer not found"


class IncorrectCategory(IncorrectRequest):
    http_status = 422
    slug = "incorrect-request"  # the type it always answered
    field = "category"
    message = "Incorrect category"


@dataclass(frozen=True)
class Notify:
    """Where the mails of support go: the outbox, and the operators' address (if any)."""

    mailer: mail.Mailer
    operators: str | None
    # Where the customer's mail links to (PUBLIC_URL); without it, the ticket's path.
    public_url: str = ""

    @classmethod
    def of(cls, services: Services) -> Notify:
        """The outbox, the operators' address (SUPPORT_NOTIFY_EMAIL) and the panel's
        address (PUBLIC_URL) for the links of the mails."""
        s = services.settings
        mailer = mail.Mailer(services.db, s.mail_url, s.mail_from)
        return cls(mailer, s.support_notify_email, s.public_url.rstrip("/"))


# ---------------------------------------------------------------------------------------
# Customers
# ---------------------------------------------------------------------------------------


async def open_ticket(
    session: AsyncSession,
    notify: Notify,
    user_id: int,
    *,
    subject: str,
    category: str,
    message: str,
    order_ids: Sequence[int] = (),
) -> Ticket:
    """A new ticket with its first message; a ticket of category `order` puts the orders
    it names under review."""
    if category not in CATEGORIES:
        raise IncorrectCategory()
    named = list(dict.fromkeys(order_ids))
    for order_id in named:
        await get_own_order(session, user_id, order_id)  # Incorrect order ID otherwise
    now = utcnow()
    ticket = Ticket(
        user_id=user_id,
        subject=subject,
        category=category,
        status=OPEN,
        order_ids=named,
        waiting_since=now,
        created_at=now,
        updated_at=now,
    )
    session.add(ticket)
    await session.flush()
    session.add(TicketMessage(ticket_id=ticket.id, author=CUSTOMER, body=message, created_at=now))
    if category == REVIEW_CATEGORY:
        for order_id in named:
            await start_review(session, ticket, order_id)
    await session.flush()
    if notify.operators:
        await mail.queue(session, notify.mailer, new_ticket_mail(notify.operators, ticket, message))
    return ticket


# A review ticket's subject, in the customer's language.
REVIEW_SUBJECTS = {"en": "Review of order {order}", "ru": "Проверка заказа {order}"}


async def request_review(
    session: AsyncSession, notify: Notify, user_id: int, order_id: int, message: str
) -> Ticket:
    """`POST /client/v1/orders/{id}/review`: a ticket of category `order` on that order."""
    language = await session.scalar(
        select(CustomerLogin.language).where(CustomerLogin.user_id == user_id)
    )
    subject = REVIEW_SUBJECTS.get(language or "en", REVIEW_SUBJECTS["en"])
    return await open_ticket(
        session,
        notify,
        user_id,
        subject=subject.format(order=order_id),
        category=REVIEW_CATEGORY,
        message=message,
        order_ids=[order_id],
    )


async def start_review(session: AsyncSession, ticket: Ticket, order_id: int) -> None:
    """Put the customer's order under review by `ticket`, once (conditional update; the
    row lock orders it with a cancel or refill of the same order)."""
    started = await session.scalar(
        update(Order)
        .where(
            Order.id == order_id,
            Order.user_id == ticket.user_id,
            Order.parent_id.is_(None),
            Order.review_ticket_id.is_(None),
        )
        .values(review_ticket_id=ticket.id)
        .returning(Order.id)
    )
    if started is None:
        raise AlreadyUnderReview()
    session.add(
        UpstreamEvent(
            order_id=order_id, action="review", outcome="started", detail={"ticket": ticket.id}
        )
    )


async def own_ticket(
    session: AsyncSession, user_id: int, ticket_id: int, *, for_update: bool = False
) -> Ticket:
    stmt = select(Ticket).where(Ticket.id == ticket_id, Ticket.user_id == user_id)
    if for_update:
        stmt = stmt.with_for_update()
    ticket = await session.scalar(stmt)
    if ticket is None:
        raise TicketNotFound()
    return ticket


async def list_own_tickets(
    session: AsyncSession, user_id: int, *, before: int | None, limit: int
) -> list[Ticket]:
    stmt = select(Ticket).where(Ticket.user_id == user_id).order_by(Ticket.id.desc()).limit(limit)
    if before is not None:
        stmt = stmt.where(Ticket.id < before)
    return list(await session.scalars(stmt))


async def messages_of(
    session: AsyncSession, ticket_id: int, *, with_internal: bool
) -> list[TicketMessage]:
    """A ticket's messages in order; internal notes only for operators."""
    stmt = select(TicketMessage).where(TicketMessage.ticket_id == ticket_id)
    if not with_internal:
        stmt = stmt.where(TicketMessage.internal.is_(False))
    return list(await session.scalars(stmt.order_by(TicketMessage.id)))


async def customer_writes(
    session: AsyncSession, user_id: int, ticket_id: int, body: str
) -> TicketMessage:
    """The customer's message: the ticket waits for an operator again; a closed ticket
    reopens within REOPEN_DAYS of its closing, later a new ticket is needed."""
    ticket = await own_ticket(session, user_id, ticket_id, for_update=True)
    now = utcnow()
    if ticket.status == CLOSED:
        if ticket.closed_at is None or now - ticket.closed_at > REOPEN_DAYS:
            raise TicketClosedForGood()
        ticket.closed_at = None
    ticket.status = OPEN
    ticket.waiting_since = ticket.waiting_since or now
    ticket.updated_at = now
    message = TicketMessage(ticket_id=ticket.id, author=CUSTOMER, body=body, created_at=now)
    session.add(message)
    await session.flush()
    return message


async def customer_closes(session: AsyncSession, user_id: int, ticket_id: int) -> Ticket:
    """The customer is done: the ticket closes and the reviews it asked for are withdrawn
    (the orders are free again; nothing was resolved)."""
    ticket = await own_ticket(session, user_id, ticket_id, for_update=True)
    if ticket.status != CLOSED:
        await _close(session, ticket)
        await session.execute(
            update(Order).where(Order.review_ticket_id == ticket.id).values(review_ticket_id=None)
        )
    return ticket


async def _close(session: AsyncSession, ticket: Ticket) -> None:
    now = utcnow()
    ticket.status = CLOSED
    ticket.closed_at = now
    ticket.waiting_since = None
    ticket.updated_at = now
    SUPPORT_RESOLUTION.observe((now - ticket.created_at).total_seconds())
    await session.flush()


# ---------------------------------------------------------------------------------------
# Operators
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TicketFilter:
    status: str | None = None
    category: str | None = None
    assignee: str | None = None  # "" lists the unassigned tickets
    user_id: int | None = None
    waiting_over: timedelta | None = None  # waiting for an operator at least this long


async def list_tickets(
    session: AsyncSession, where: TicketFilter, *, limit: int, offset: int
) -> list[Ticket]:
    """Tickets, those waiting longest first, then the newest."""
    stmt = (
        select(Ticket)
        .order_by(Ticket.waiting_since.asc().nulls_last(), Ticket.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if where.status is not None:
        stmt = stmt.where(Ticket.status == where.status)
    if where.category is not None:
        stmt = stmt.where(Ticket.category == where.category)
    if where.assignee == "":
        stmt = stmt.where(Ticket.assignee.is_(None))
    elif where.assignee is not None:
        stmt = stmt.where(Ticket.assignee == where.assignee)
    if where.user_id is not None:
        stmt = stmt.where(Ticket.user_id == where.user_id)
    if where.waiting_over is not None:
        stmt = stmt.where(Ticket.waiting_since <= utcnow() - where.waiting_over)
    return list(await session.scalars(stmt))


async def get_ticket(session: AsyncSession, ticket_id: int, *, for_update: bool = False) -> Ticket:
    stmt = select(Ticket).where(Ticket.id == ticket_id)
    if for_update:
        stmt = stmt.with_for_update()
    ticket = await session.scalar(stmt)
    if ticket is None:
        raise TicketNotFound()
    return ticket


async def assign(session: AsyncSession, ticket_id: int, assignee: str | None) -> Ticket:
    ticket = await get_ticket(session, ticket_id, for_update=True)
    ticket.assignee = assignee or None
    ticket.updated_at = utcnow()
    await session.flush()
    return ticket


async def operator_answers(
    session: AsyncSession, notify: Notify, ticket_id: int, operator: str, body: str
) -> TicketMessage:
    """An operator's answer: the customer sees it and gets a mail; the ticket is answered
    (the customer's next message opens it again)."""
    ticket = await get_ticket(session, ticket_id, for_update=True)
    now = utcnow()
    if ticket.first_response_at is None:
        ticket.first_response_at = now
        SUPPORT_FIRST_RESPONSE.observe((now - ticket.created_at).total_seconds())
    if ticket.status != CLOSED:
        ticket.status = ANSWERED
    ticket.waiting_since = None
    ticket.updated_at = now
    message = TicketMessage(
        ticket_id=ticket.id, author=OPERATOR, operator=operator, body=body, created_at=now
    )
    session.add(message)
    await session.flush()
    email, language = (
        await session.execute(
            select(User.email, CustomerLogin.language)
            .outerjoin(CustomerLogin, CustomerLogin.user_id == User.id)
            .where(User.id == ticket.user_id)
        )
    ).one()
    if email:
        link = f"{notify.public_url}/web/tickets/{ticket.id}"
        await mail.queue(
            session, notify.mailer, answered_mail(email, ticket, body, language or "en", link)
        )
    return message


async def add_note(
    session: AsyncSession, ticket_id: int, operator: str, body: str
) -> TicketMessage:
    """An internal note: for operators only, never part of a customer's answer."""
    ticket = await get_ticket(session, ticket_id, for_update=True)
    note = TicketMessage(
        ticket_id=ticket.id, author=OPERATOR, operator=operator, internal=True, body=body
    )
    session.add(note)
    await session.flush()
    return note


async def set_status(session: AsyncSession, ticket_id: int, status: str) -> Ticket:
    if status not in TICKET_STATUSES:
        raise IncorrectRequest("Incorrect status")
    ticket = await get_ticket(session, ticket_id, for_update=True)
    if status == ticket.status:
        return ticket
    if status == CLOSED:
        if await reviews_pending(session, ticket.id):
            raise ReviewsPending()
        await _close(session, ticket)
        return ticket
    ticket.status = status
    ticket.closed_at = None
    ticket.waiting_since = (ticket.waiting_since or utcnow()) if status == OPEN else None
    ticket.updated_at = utcnow()
    await session.flush()
    return ticket


async def reviews_pending(session: AsyncSession, ticket_id: int) -> list[int]:
    """The orders still under review by this ticket."""
    return list(
        await session.scalars(
            select(Order.id).where(Order.review_ticket_id == ticket_id).order_by(Order.id)
        )
    )


async def reviewed_orders(
    session: AsyncSession, ticket: Ticket
) -> list[tuple[Order, list[UpstreamEvent]]]:
    """The orders a ticket names or reviews, each with its full upstream history."""
    ids = sorted({*ticket.order_ids, *await reviews_pending(session, ticket.id)})
    if not ids:
        return []
    orders = list(await session.scalars(select(Order).where(Order.id.in_(ids)).order_by(Order.id)))
    events = await session.scalars(
        select(UpstreamEvent)
        .where(UpstreamEvent.order_id.in_(ids))
        .order_by(UpstreamEvent.order_id, UpstreamEvent.id)
    )
    by_order: dict[int, list[UpstreamEvent]] = {o.id: [] for o in orders}
    for event in events:
        if event.order_id is not None:
            by_order[event.order_id].append(event)
    return [(o, by_order[o.id]) for o in orders]


async def resolutions_of(session: AsyncSession, ticket_id: int) -> list[ReviewResolution]:
    """How the ticket's order reviews ended, in order."""
    return list(
        await session.scalars(
            select(ReviewResolution)
            .where(ReviewResolution.ticket_id == ticket_id)
            .order_by(ReviewResolution.id)
        )
    )


# ---------------------------------------------------------------------------------------
# Canned answers
# ---------------------------------------------------------------------------------------


async def list_canned(session: AsyncSession) -> list[CannedAnswer]:
    return list(await session.scalars(select(CannedAnswer).order_by(CannedAnswer.title)))


async def get_canned(session: AsyncSession, canned_id: int) -> CannedAnswer:
    found = await session.get(CannedAnswer, canned_id)
    if found is None:
        raise CannedAnswerNotFound()
    return found


async def save_canned(
    session: AsyncSession, canned_id: int | None, values: dict[str, Any]
) -> CannedAnswer:
    clash = await session.scalar(
        select(CannedAnswer.id).where(
            CannedAnswer.title == values.get("title"), CannedAnswer.id != (canned_id or 0)
        )
    )
    if clash is not None:
        raise Conflict("A canned answer with this title exists")
    if canned_id is None:
        row = CannedAnswer(**values)
        session.add(row)
    else:
        row = await get_canned(session, canned_id)
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_at = utcnow()
    await session.flush()
    return row


async def delete_canned(session: AsyncSession, canned_id: int) -> CannedAnswer:
    row = await get_canned(session, canned_id)
    await session.delete(row)
    await session.flush()
    return row


# ---------------------------------------------------------------------------------------
# Measures
# ---------------------------------------------------------------------------------------


async def open_count(session: AsyncSession) -> int:
    """Tickets not closed (the gauge read at scrape time)."""
    return int(
        await session.scalar(select(func.count(Ticket.id)).where(Ticket.status != CLOSED)) or 0
    )


@dataclass(frozen=True)
class SupportReport:
    created: int
    by_category: dict[str, int]
    open_now: int
    answered: int  # of those created, how many got an operator's answer
    closed: int
    first_response_seconds_avg: float | None
    first_response_seconds_max: float | None
    resolution_seconds_avg: float | None
    resolution_seconds_max: float | None


async def report(session: AsyncSession, since: datetime, until: datetime) -> SupportReport:
    """The tickets created in [since, until): how many, how fast they were first answered
    and resolved (closed)."""
    window = (Ticket.created_at >= since, Ticket.created_at < until)
    first = func.extract("epoch", Ticket.first_response_at - Ticket.created_at)
    resolved = func.extract("epoch", Ticket.closed_at - Ticket.created_at)
    row = (
        await session.execute(
            select(
                func.count(Ticket.id),
                func.count(Ticket.first_response_at),
                func.count(Ticket.closed_at),
                func.avg(first),
                func.max(first),
                func.avg(resolved),
                func.max(resolved),
            ).where(*window)
        )
    ).one()
    categories = dict(
        (
            await session.execute(
                select(Ticket.category, func.count(Ticket.id))
                .where(*window)
                .group_by(Ticket.category)
            )
        ).all()
    )

    def seconds(value: object) -> float | None:
        return None if value is None else round(float(str(value)), 3)

    return SupportReport(
        created=int(row[0]),
        by_category={c: int(categories.get(c, 0)) for c in CATEGORIES},
        open_now=await open_count(session),
        answered=int(row[1]),
        closed=int(row[2]),
        first_response_seconds_avg=seconds(row[3]),
        first_response_seconds_max=seconds(row[4]),
        resolution_seconds_avg=seconds(row[5]),
        resolution_seconds_max=seconds(row[6]),
    )


# ---------------------------------------------------------------------------------------
# Privacy
# ---------------------------------------------------------------------------------------


async def export_of(session: AsyncSession, user_id: int) -> list[dict[str, Any]]:
    """A user's tickets with the messages they can see (for the data export)."""
    out: list[dict[str, Any]] = []
    for ticket in await session.scalars(
        select(Ticket).where(Ticket.user_id == user_id).order_by(Ticket.id)
    ):
        out.append(
            {
                "id": ticket.id,
                "subject": ticket.subject,
                "category": ticket.category,
                "status": ticket.status,
                "orders": list(ticket.order_ids),
                "created_at": ticket.created_at,
                "closed_at": ticket.closed_at,
                "messages": [
                    {"author": m.author, "body": m.body, "created_at": m.created_at}
                    for m in await messages_of(session, ticket.id, with_internal=False)
                ],
            }
        )
    return out


async def erase_of(session: AsyncSession, user_ids: Sequence[int]) -> int:
    """Delete the users' tickets (their messages go with them); the number deleted."""
    gone = await session.scalars(
        delete(Ticket).where(Ticket.user_id.in_(user_ids)).returning(Ticket.id)
    )
    return len(list(gone))


async def purge_closed_before(session: AsyncSession, cutoff: datetime) -> int:
    """Retention: closed tickets whose last activity is older than `cutoff`."""
    gone = await session.scalars(
        delete(Ticket)
        .where(Ticket.status == CLOSED, Ticket.updated_at < cutoff)
        .returning(Ticket.id)
    )
    return len(list(gone))
