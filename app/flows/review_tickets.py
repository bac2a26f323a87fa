"""How an order's review under a Support ticket ends (ToS 2.5): the operator takes one
decision (no action, resend upstream, a partial or full refund, mark completed), the
review ends and the ticket gets the answer, all in one transaction.

Exactly once, three ways: the order must still be under review by this ticket (locked
row, conditional update ending it), the resolution row is unique per (ticket, order), and
a refund is the order's one refund entry in the ledger (a unique index), with the ticket
named in its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import partial

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.customers.models import CustomerLogin
from app.db import after_commit, utcnow
from app.errors import Conflict, IncorrectRequest
from app.http.auth import Principal
from app.jobs import JobQueue
from app.orders import service as orders
from app.orders.models import (
    ACTIVE_STATUSES,
    COMPLETED,
    FINAL_STATUSES,
    PENDING,
    UP_DRIPFEED,
    UP_QUEUED,
    Order,
    UpstreamEvent,
)
from app.pages.i18n import money
from app.staff import service as staff
from app.staff.errors import RefundAboveLimit
from app.tickets import service as tickets
from app.tickets.models import (
    COMPLETE,
    NO_ACTION,
    REFUND,
    RESEND,
    RESOLUTIONS,
    ReviewResolution,
    TicketMessage,
)


class NotUnderReview(Conflict):
    http_status = 409
    message = "This order is not under review by this ticket (already resolved?)"


class CannotResend(Conflict):
    http_status = 409
    message = "This order cannot be resent upstream"


class RefundRefused(Conflict):
    http_status = 409
    message = "This order was refunded already: it cannot be refunded again"


# The answer a resolution gives when the operator writes none, in the customer's language;
# a refund's amount in the locale's money format with its currency.
DEFAULT_ANSWERS = {
    "en": {
        NO_ACTION: "We reviewed order {order}: it stands as it is.",
        RESEND: "We reviewed order {order}: it is sent to the provider again.",
        REFUND: "We reviewed order {order}: {amount} is refunded to your balance.",
        COMPLETE: "We reviewed order {order}: it is marked completed.",
    },
    "ru": {
        NO_ACTION: "Мы проверили заказ {order}: он остаётся как есть.",
        RESEND: "Мы проверили заказ {order}: он снова отправлен поставщику.",
        REFUND: "Мы проверили заказ {order}: {amount} возвращено на ваш баланс.",
        COMPLETE: "Мы проверили заказ {order}: он отмечен выполненным.",
    },
}


async def default_answer(
    session: AsyncSession, order: Order, action: str, amount: Decimal | None
) -> str:
    """The resolution's answer in the order's owner's language."""
    language, currency = (
        await session.execute(
            select(CustomerLogin.language, User.currency)
            .outerjoin(CustomerLogin, CustomerLogin.user_id == User.id)
            .where(User.id == order.user_id)
        )
    ).one()
    language = language if language in DEFAULT_ANSWERS else "en"
    shown = money(amount, currency, language) if amount is not None else ""
    return DEFAULT_ANSWERS[language][action].format(order=order.id, amount=shown)


@dataclass(frozen=True)
class Resolved:
    resolution: ReviewResolution
    answer: TicketMessage
    relay: int | None  # an order to relay after the commit (resend)


async def resolve_as(
    session: AsyncSession,
    jobs: JobQueue,
    notify: tickets.Notify,
    principal: Principal,
    ticket_id: int,
    *,
    order_id: int,
    action: str,
    amount: Decimal | None = None,
    message: str | None = None,
) -> Resolved:
    """A staff member's resolution: refunds bounded by their role's limit (a support
    agent's is the owner's support refund limit), a resent order relayed after the commit."""
    done = await resolve_review(
        session,
        notify,
        principal.name,
        ticket_id,
        order_id=order_id,
        action=action,
        amount=amount,
        message=message,
        refund_limit=await staff.refund_limit(session, principal),
    )
    if done.relay is not None:
        after_commit(session, partial(jobs.relay_order, done.relay))
    return done


async def resolve_review(
    session: AsyncSession,
    notify: tickets.Notify,
    operator: str,
    ticket_id: int,
    *,
    order_id: int,
    action: str,
    amount: Decimal | None = None,
    message: str | None = None,
    refund_limit: Decimal | None = None,
) -> Resolved:
    """`refund_limit`: the largest refund the operator may grant here (None: no limit; a
    support agent's is the owner's support refund limit)."""
    if action not in RESOLUTIONS:
        raise IncorrectRequest("Incorrect action: " + ", ".join(RESOLUTIONS))
    if amount is not None and action != REFUND:
        raise IncorrectRequest("An amount goes with the refund action only")
    ticket = await tickets.get_ticket(session, ticket_id, for_update=True)
    await orders.lock_owners(session, [order_id])  # the owner, then the order: the lock order
    order = await session.scalar(
        select(Order)
        .where(Order.id == order_id, Order.review_ticket_id == ticket.id)
        .with_for_update()
    )
    if order is None:
        raise NotUnderReview()
    resolution = ReviewResolution(
        ticket_id=ticket.id, order_id=order.id, action=action, operator=operator
    )
    relay: int | None = None
    if action == REFUND:
        resolution.amount = await _refund(session, ticket.id, order, amount, refund_limit)
    elif action == RESEND:
        relay = await _resend(session, ticket.id, order)
    elif action == COMPLETE:
        await _complete(session, order, operator)
    ended = await session.scalar(
        update(Order)
        .where(Order.id == order.id, Order.review_ticket_id == ticket.id)
        .values(review_ticket_id=None)
        .returning(Order.id)
    )
    assert ended is not None  # the row is locked and was under this review
    session.add(resolution)
    session.add(
        UpstreamEvent(
            order_id=order.id,
            action="review",
            outcome=action,
            detail={"ticket": ticket.id, "operator": operator, "amount": str(resolution.amount)}
            if resolution.amount is not None
            else {"ticket": ticket.id, "operator": operator},
        )
    )
    await session.flush()
    text = message or await default_answer(session, order, action, resolution.amount)
    answer = await tickets.operator_answers(session, notify, ticket.id, operator, text)
    return Resolved(resolution, answer, relay)


async def _refund(
    session: AsyncSession,
    ticket_id: int,
    order: Order,
    amount: Decimal | None,
    limit: Decimal | None,
) -> Decimal:
    refundable = order.charge - order.refunded
    wanted = refundable if amount is None else amount
    if wanted <= 0 or wanted > refundable:
        raise IncorrectRequest(f"The refund must be more than 0 and at most {refundable}")
    if limit is not None and wanted > limit:
        raise RefundAboveLimit(limit)
    done = await orders.refund(
        session, order_id=order.id, amount=wanted, reason=f"Ticket {ticket_id} review"
    )
    if done != wanted:
        raise RefundRefused()
    return wanted


async def _resend(session: AsyncSession, ticket_id: int, order: Order) -> int:
    """Send the order to its provider again as a new attempt: only an order with a
    provider, not drip-fed by the panel, never refunded (the customer pays once for what
    is sent once more)."""
    if order.provider_id is None or order.upstream_state == UP_DRIPFEED or order.refunded > 0:
        raise CannotResend()
    if order.status in FINAL_STATUSES:
        active = await session.scalar(
            select(Order.id).where(
                Order.user_id == order.user_id,
                Order.service_id == order.service_id,
                Order.link_normalized == order.link_normalized,
                Order.parent_id.is_(None),
                Order.status.in_(ACTIVE_STATUSES),
                Order.id != order.id,
            )
        )
        if active is not None:
            raise CannotResend("Another active order has this link: it cannot be resent now")
    previous = order.provider_order_id
    await session.execute(
        update(Order)
        .where(Order.id == order.id)
        .values(
            status=PENDING,
            upstream_state=UP_QUEUED,
            provider_order_id=None,
            next_attempt_at=utcnow(),
            sending_since=None,
            finished_at=None,
            start_count=None,
            remains=None,
            cancel_state=None,
            cancel_requested_at=None,
            last_error=None,
        )
    )
    session.add(
        UpstreamEvent(
            order_id=order.id,
            action="resend",
            outcome="queued",
            detail={"ticket": ticket_id, "previous_provider_order_id": previous},
        )
    )
    return order.id


async def _complete(session: AsyncSession, order: Order, operator: str) -> None:
    if order.status in FINAL_STATUSES or order.upstream_state == UP_DRIPFEED:
        if order.status != COMPLETED:
            raise Conflict(f"Order already finished ({order.status}): it cannot be completed")
        return
    await orders.apply_status(
        session, order.id, orders.StatusReport(COMPLETED), source=f"operator:{operator}"
    )
