"""Orders: placing them (charge + duplicate rule), reading them, canceling them, and
applying status reports with their refunds, each exactly once.

Lock order (docs/architecture.md): users before orders, each set by ascending id. Every
function here that may move money locks the owners first (`lock_owners`, or the caller's
`ledger.lock_users`), then the orders; a drip-feed parent is locked with its run, before
it (its id is lower). So two transactions never wait on each other in a circle."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any, Protocol, cast

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import USER_BLOCKED, User
from app.catalog import service as catalog
from app.catalog.models import Service
from app.db import utcnow
from app.errors import (
    CancelDisabled,
    Conflict,
    DomainError,
    DuplicateActiveOrder,
    IncorrectOrderId,
    IncorrectRequestId,
    IncorrectServiceId,
    LinkUnderReview,
    OrderUnderReview,
    RequestIdReused,
)
from app.ledger import service as ledger
from app.money import places_of, proportional_refund, quantum
from app.orders.models import (
    ACTIVE_STATUSES,
    CANCELED,
    COMPLETED,
    FINAL_STATUSES,
    IN_PROGRESS,
    PARTIAL,
    PENDING,
    PROCESSING,
    UP_DRIPFEED,
    UP_MANUAL,
    UP_QUEUED,
    UP_WITHDRAWN,
    Order,
    UpstreamEvent,
)
from app.orders.types import OrderRequest, handler_for, parse_int


class OrderNotCancelable(DomainError):
    http_status = 422
    message = "Order cannot be canceled"


class OrderFinished(Conflict):
    """A final order never moves again (an operator's status included)."""

    http_status = 409

    def __init__(self, status: str) -> None:
        super().__init__(f"Order already finished ({status}): its status cannot change")


class StatusFollowsRuns(Conflict):
    http_status = 409
    message = "A drip-feed order's status follows its runs: set a run's status"


class CancelAlreadyRequested(OrderNotCancelable):
    http_status = 422
    message = "Cancel already requested for this order"


# An order's cancel_state: "requested" (due upstream), "sent" (the provider took it) or
# "rejected" (the provider refused it: the user may ask again).
CANCEL_REQUESTED, CANCEL_SENT, CANCEL_REJECTED = "requested", "sent", "rejected"
CANCEL_PENDING_STATES = (CANCEL_REQUESTED, CANCEL_SENT)


@dataclass(frozen=True)
class PlacedOrder:
    order_id: int
    charge: Decimal
    # Orders to relay (the order itself, or its drip-feed runs) and when each is due.
    relays: list[tuple[int, datetime]]


# --- request ids (optional extension of `add`, SPEC §4) --------------------------------

REQUEST_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# Fields that are not parameters of the order: a retry may differ in them.
NOT_PARAMETERS = frozenset({"key", "action", "request_id"})


def request_id_of(fields: Mapping[str, str]) -> str | None:
    """The `request_id` of an `add`, None when absent; IncorrectRequestId when malformed."""
    if "request_id" not in fields:
        return None
    given = fields["request_id"]
    if not isinstance(given, str) or REQUEST_ID_PATTERN.fullmatch(given) is None:
        raise IncorrectRequestId()
    return given


def request_digest(fields: Mapping[str, str]) -> str:
    """What makes two `add`s with one request id the same request: their parameters as
    sent (everything but the key, the action and the request id)."""
    shown = sorted((k, str(v)) for k, v in fields.items() if k not in NOT_PARAMETERS)
    return hashlib.sha256(json.dumps(shown, ensure_ascii=False).encode()).hexdigest()


async def find_request(
    session: AsyncSession, user_id: int, request_id: str, digest: str
) -> int | None:
    """The order an earlier `add` with this request id placed (None: there is none yet);
    RequestIdReused when that add had other parameters."""
    row = (
        await session.execute(
            select(Order.id, Order.request_digest).where(
                Order.user_id == user_id, Order.request_id == request_id
            )
        )
    ).one_or_none()
    if row is None:
        return None
    if row.request_digest != digest:
        raise RequestIdReused()
    return int(row.id)


def upstream_state_for(service: Service, request: OrderRequest) -> str:
    """Where a new order starts upstream: queued for its provider, manual without one, or
    dripfeed when the provider cannot drip-feed (the panel sends each run as a child
    order)."""
    if service.provider_id is None:
        return UP_MANUAL
    if request.runs is not None and not service.provider_dripfeed:
        return UP_DRIPFEED
    return UP_QUEUED


async def place_order(
    session: AsyncSession, user_id: int, fields: Mapping[str, str]
) -> PlacedOrder:
    """Validate an `add`, store the order and charge for it in the caller's transaction.

    The order row goes in first: the partial unique index on active (user, service,
    link) makes a concurrent identical `add` wait for this transaction and then find the
    conflict. The debit that follows is conditional, so no money is spent twice.

    With a `request_id`, an earlier order of the same request is the answer (nothing is
    charged again), checked before any rule (a retry must get its order even when the
    service has changed since) and again after a conflict (the first request was in
    flight: the unique index on (user, request id) made this one wait for it).
    """
    request_id = request_id_of(fields)
    digest = request_digest(fields) if request_id is not None else None
    if request_id is not None and digest is not None:
        earlier = await find_request(session, user_id, request_id, digest)
        if earlier is not None:
            return PlacedOrder(earlier, Decimal(0), [])
    service_id = parse_int(fields.get("service"), IncorrectServiceId())
    offered = await catalog.get_offered(session, user_id, service_id)
    service = offered.service
    handler = handler_for(service.type)
    request = handler.parse(service, fields)
    charge = handler.charge(offered.rate, request)
    upstream_state = upstream_state_for(service, request)
    panel_dripfeed = upstream_state == UP_DRIPFEED
    await refuse_target_under_review(session, user_id, service.id, request.link_normalized)
    now = utcnow()
    order_id = await session.scalar(
        pg_insert(Order)
        .values(
            user_id=user_id,
            service_id=service.id,
            type=service.type,
            link=request.link,
            link_normalized=request.link_normalized,
            quantity=request.quantity,
            runs=request.runs,
            interval_minutes=request.interval_minutes,
            params=request.params,
            rate=offered.rate,
            charge=charge,
            refunded=Decimal(0),
            status=PENDING,
            upstream_state=upstream_state,
            provider_id=service.provider_id,
            provider_service_id=service.provider_service_id,
            next_attempt_at=now if upstream_state == UP_QUEUED else None,
            created_at=now,
            updated_at=now,
            request_id=request_id,
            request_digest=digest,
        )
        .on_conflict_do_nothing()
        .returning(Order.id)
    )
    if order_id is None:
        if request_id is not None and digest is not None:
            earlier = await find_request(session, user_id, request_id, digest)
            if earlier is not None:
                return PlacedOrder(earlier, Decimal(0), [])
        raise DuplicateActiveOrder()
    if charge > 0:
        await ledger.debit(
            session,
            user_id=user_id,
            amount=charge,
            kind="charge",
            reason=f"Order {order_id}",
            order_id=order_id,
        )
    relays = [(order_id, now)] if upstream_state == UP_QUEUED else []
    if panel_dripfeed:
        relays = await _create_runs(session, order_id)
    return PlacedOrder(order_id, charge, relays)


async def refuse_target_under_review(
    session: AsyncSession, user_id: int, service_id: int, link_normalized: str
) -> None:
    """ToS 2.5: while one of the user's orders on this link and service is under review,
    no new order goes there (the twin condition is in `orders.sql.ADD_ORDER`)."""
    if not link_normalized:
        return
    reviewed = await session.scalar(
        select(Order.id)
        .where(
            Order.user_id == user_id,
            Order.service_id == service_id,
            Order.link_normalized == link_normalized,
            Order.review_ticket_id.is_not(None),
        )
        .limit(1)
    )
    if reviewed is not None:
        raise LinkUnderReview()


def split_charge(charge: Decimal, runs: int) -> list[Decimal]:
    """Each run's share of the charge, rounded down, the last run taking the remainder,
    so the shares add up to the charge exactly."""
    places = max(5, places_of(charge))
    share = (charge / runs).quantize(quantum(places), rounding=ROUND_DOWN)
    return [share] * (runs - 1) + [charge - share * (runs - 1)]


async def _create_runs(session: AsyncSession, parent_id: int) -> list[tuple[int, datetime]]:
    parent = await session.get(Order, parent_id)
    assert parent is not None and parent.runs and parent.interval_minutes
    per_run = parent.quantity // parent.runs
    params = {k: v for k, v in parent.params.items() if k not in ("runs", "interval")}
    params["quantity"] = per_run
    start = utcnow()
    runs: list[Order] = []
    for index, share in enumerate(split_charge(parent.charge, parent.runs)):
        runs.append(
            Order(
                user_id=parent.user_id,
                service_id=parent.service_id,
                parent_id=parent.id,
                type=parent.type,
                link=parent.link,
                link_normalized=parent.link_normalized,
                quantity=per_run,
                params=params,
                rate=parent.rate,
                charge=share,
                refunded=Decimal(0),
                status=PENDING,
                upstream_state=UP_QUEUED,
                provider_id=parent.provider_id,
                provider_service_id=parent.provider_service_id,
                next_attempt_at=start + timedelta(minutes=parent.interval_minutes * index),
            )
        )
    session.add_all(runs)
    await session.flush()
    return [(run.id, run.next_attempt_at or start) for run in runs]


class OrderView(Protocol):
    """What `status` shows of an order: a full Order or a lighter row of these columns."""

    id: int
    type: str
    quantity: int
    runs: int | None
    params: dict[str, Any]
    rate: Decimal
    charge: Decimal
    start_count: int | None
    remains: int | None
    status: str
    upstream_state: str


VIEW_COLUMNS = (
    Order.id,
    Order.type,
    Order.quantity,
    Order.runs,
    Order.params,
    Order.rate,
    Order.charge,
    Order.start_count,
    Order.remains,
    Order.status,
    Order.upstream_state,
)


async def get_own_orders(
    session: AsyncSession, user_id: int, order_ids: Sequence[int]
) -> dict[int, OrderView]:
    """The caller's orders among `order_ids` (others' and drip-feed runs are not found).
    Plain rows rather than ORM objects: this is the hot path of multi-status."""
    if not order_ids:
        return {}
    rows = await session.execute(
        select(*VIEW_COLUMNS).where(
            Order.id.in_(set(order_ids)), Order.user_id == user_id, Order.parent_id.is_(None)
        )
    )
    return {row.id: cast(OrderView, row) for row in rows}


async def order_ids_by_request(
    session: AsyncSession, user_id: int, request_ids: Sequence[str]
) -> dict[str, int]:
    """The caller's orders placed with these request ids: request id -> order id."""
    if not request_ids:
        return {}
    rows = await session.execute(
        select(Order.request_id, Order.id).where(
            Order.user_id == user_id,
            Order.request_id.in_(set(request_ids)),
            Order.parent_id.is_(None),
        )
    )
    return {str(row.request_id): int(row.id) for row in rows}


async def runs_done(session: AsyncSession, orders: Sequence[OrderView]) -> dict[int, int]:
    """For drip-feed orders the panel runs itself: how many runs have been delivered."""
    parents = [o.id for o in orders if o.upstream_state == UP_DRIPFEED]
    if not parents:
        return {}
    rows = await session.execute(
        select(Order.parent_id, func.count(Order.id))
        .where(Order.parent_id.in_(parents), Order.status.in_((COMPLETED, PARTIAL)))
        .group_by(Order.parent_id)
    )
    done = {parent: 0 for parent in parents}
    done.update({int(parent): int(count) for parent, count in rows.all() if parent is not None})
    return done


async def get_own_order(
    session: AsyncSession, user_id: int, order_id: int, *, for_update: bool = False
) -> Order:
    stmt = select(Order).where(
        Order.id == order_id, Order.user_id == user_id, Order.parent_id.is_(None)
    )
    if for_update:
        stmt = stmt.with_for_update()
    order = await session.scalar(stmt)
    if order is None:
        raise IncorrectOrderId()
    return order


async def lock_owners(
    session: AsyncSession,
    order_ids: Sequence[int],
    *,
    user_id: int | None = None,
    with_runs: bool = False,
) -> None:
    """Take the locks a change to these orders (their refunds included) needs, in the
    global order: their owners' rows first, then the orders and their drip-feed parents
    (and, `with_runs`, their runs), each by ascending id. Only `user_id`'s orders when
    given. An order's owner and parent never change, so they are read without a lock.
    Locks the transaction holds already are taken again at no cost."""
    if not order_ids:
        return
    found = select(Order.id, Order.user_id, Order.parent_id).where(Order.id.in_(set(order_ids)))
    if user_id is not None:
        found = found.where(Order.user_id == user_id)
    rows = (await session.execute(found)).all()
    if not rows:
        return
    await ledger.lock_users(session, {row.user_id for row in rows})
    ids = {row.id for row in rows} | {row.parent_id for row in rows if row.parent_id is not None}
    if with_runs:
        ids.update(await session.scalars(select(Order.id).where(Order.parent_id.in_(ids))))
    await session.execute(
        select(Order.id).where(Order.id.in_(ids)).order_by(Order.id).with_for_update()
    )


async def cancel_order(session: AsyncSession, user_id: int, order_id: int) -> list[int]:
    """A user's cancel. Returns the ids of orders (the order itself, or drip-feed runs)
    already sent upstream, whose cancel request to the provider is now due; whatever was
    not sent yet is canceled and refunded at once."""
    # The lock order: the owner first, then the order and its runs, by ascending id.
    await lock_owners(session, [order_id], user_id=user_id, with_runs=True)
    # Locked: a review (ToS 2.5) starting meanwhile waits for this cancel, or stops it.
    order = await get_own_order(session, user_id, order_id, for_update=True)
    if order.review_ticket_id is not None:
        raise OrderUnderReview()
    service = await session.get(Service, order.service_id)
    if service is None or not service.cancel:
        raise CancelDisabled()
    if order.status in FINAL_STATUSES:
        raise OrderNotCancelable()
    if order.upstream_state == UP_DRIPFEED:
        runs = list(
            await session.scalars(
                select(Order.id)
                .where(Order.parent_id == order.id, Order.status.in_(ACTIVE_STATUSES))
                .order_by(Order.id)
            )
        )
        due: list[int] = []
        acted = False
        for run in runs:
            try:
                if await stop_order(session, run):
                    due.append(run)
                acted = True
            except CancelAlreadyRequested:
                continue
        if runs and not acted:
            # Only runs whose cancel is on its way already were left.
            raise CancelAlreadyRequested()
        await refresh_parent(session, order.id)
        return due
    if await stop_order(session, order.id):
        return [order.id]
    return []


async def stop_order(session: AsyncSession, order_id: int) -> bool:
    """Withdraw an order that was not sent (refunded in full now), or mark a sent one for
    an upstream cancel (True). Conditional updates: a racing relay or a second cancel
    cannot both act on it. A cancel already requested or taken by the provider is not
    asked again (CancelAlreadyRequested): the provider would refuse a second one, and its
    refusal must not be recorded on an order it is canceling."""
    withdrawn = await session.scalar(
        update(Order)
        .where(
            Order.id == order_id,
            Order.status == PENDING,
            Order.upstream_state.in_((UP_QUEUED, UP_MANUAL)),
        )
        .values(
            status=CANCELED,
            upstream_state=UP_WITHDRAWN,
            finished_at=utcnow(),
            remains=Order.quantity,
        )
        .returning(Order.charge)
    )
    if withdrawn is not None:
        await refund(session, order_id=order_id, amount=withdrawn, reason="Canceled before sending")
        return False
    requested = await session.scalar(
        update(Order)
        .where(
            Order.id == order_id,
            Order.status.in_(ACTIVE_STATUSES),
            or_(Order.cancel_state.is_(None), Order.cancel_state.not_in(CANCEL_PENDING_STATES)),
        )
        .values(cancel_requested_at=utcnow(), cancel_state=CANCEL_REQUESTED)
        .returning(Order.id)
    )
    if requested is None:
        pending = await session.scalar(
            select(Order.id).where(
                Order.id == order_id,
                Order.status.in_(ACTIVE_STATUSES),
                Order.cancel_state.in_(CANCEL_PENDING_STATES),
            )
        )
        raise CancelAlreadyRequested() if pending is not None else OrderNotCancelable()
    return True


async def refund(session: AsyncSession, *, order_id: int, amount: Decimal, reason: str) -> Decimal:
    """Refund an order once. Returns the amount refunded now (0 if it already was).
    The caller holds no lock on the order without its owner's (see `lock_owners`)."""
    if amount <= 0:
        return Decimal(0)
    await lock_owners(session, [order_id])
    order = await session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None:
        raise IncorrectOrderId()
    root_id = order.parent_id or order.id
    movement = await ledger.credit(
        session,
        user_id=order.user_id,
        amount=amount,
        kind="refund",
        reason=f"Order {root_id}: {reason}",
        order_id=order.id,
    )
    if movement is None:
        return Decimal(0)
    await session.execute(
        update(Order).where(Order.id == root_id).values(refunded=Order.refunded + amount)
    )
    owner_status = await session.scalar(select(User.status).where(User.id == order.user_id))
    if owner_status == USER_BLOCKED:
        # A blocked account's balance is forfeited; so is whatever is refunded to it later.
        await ledger.debit(
            session,
            user_id=order.user_id,
            amount=amount,
            kind="forfeit",
            reason=f"Order {root_id}: refund forfeited (account blocked)",
            require_active=False,
        )
    return amount


def refuse_operator_status(order: Order) -> None:
    """An operator sets the status of an active order that follows no runs."""
    if order.status in FINAL_STATUSES:
        raise OrderFinished(order.status)
    if order.upstream_state == UP_DRIPFEED:
        raise StatusFollowsRuns()


@dataclass(frozen=True)
class StatusReport:
    """What a provider (or an operator) says about an order."""

    status: str
    start_count: int | None = None
    remains: int | None = None


async def apply_status(
    session: AsyncSession, order_id: int, report: StatusReport, *, source: str
) -> bool:
    """Move an order forward according to a report; refund on Partial/Canceled.

    Final orders never move again, so duplicate or out-of-order reports (Completed after
    Partial, the same Partial twice) change nothing. Returns True if the order changed.
    """
    await lock_owners(session, [order_id])
    order = await session.scalar(select(Order).where(Order.id == order_id).with_for_update())
    if order is None:
        raise IncorrectOrderId()
    if order.status in FINAL_STATUSES or order.upstream_state == UP_DRIPFEED:
        # Final orders never move; a drip-feed parent's status is derived from its runs.
        return False
    values: dict[str, Any] = {}
    if report.start_count is not None and report.start_count >= 0:
        values["start_count"] = report.start_count
    if report.remains is not None:
        # Over-delivery shows as negative remains; it is never charged for.
        values["remains"] = min(max(report.remains, 0), order.quantity)
    if report.status != order.status:
        values["status"] = report.status
    if report.status in FINAL_STATUSES:
        values["finished_at"] = utcnow()
        if report.status == COMPLETED:
            values["remains"] = 0
        elif report.status == CANCELED:
            values["remains"] = order.quantity
    if not values:
        return False
    await session.execute(update(Order).where(Order.id == order.id).values(**values))
    if report.status == PARTIAL:
        remains = values.get("remains", order.remains) or 0
        amount = proportional_refund(order.charge, order.quantity, remains)
        await refund(session, order_id=order.id, amount=amount, reason="Partial")
    elif report.status == CANCELED:
        await refund(session, order_id=order.id, amount=order.charge, reason="Canceled")
    session.add(
        UpstreamEvent(
            order_id=order.id,
            action="status",
            outcome=report.status,
            detail={"source": source, "start_count": report.start_count, "remains": report.remains},
        )
    )
    if order.parent_id is not None:
        await refresh_parent(session, order.parent_id)
    return True


async def refresh_parent(session: AsyncSession, parent_id: int) -> None:
    """A drip-feed order's status and remains aggregate its runs."""
    runs = (
        await session.execute(
            select(Order.status, Order.quantity, Order.remains, Order.start_count)
            .where(Order.parent_id == parent_id)
            .order_by(Order.id)
        )
    ).all()
    if not runs:
        return
    remains = 0
    for status, quantity, run_remains, _ in runs:
        if status == COMPLETED:
            continue
        remains += quantity if run_remains is None or status == CANCELED else run_remains
    statuses = {r[0] for r in runs}
    start_count = next((r[3] for r in runs if r[3] is not None), None)
    values: dict[str, Any] = {"remains": remains, "start_count": start_count}
    if statuses <= set(FINAL_STATUSES):
        total = sum(r[1] for r in runs)
        if statuses == {COMPLETED}:
            values["status"] = COMPLETED
        elif remains >= total:
            values["status"] = CANCELED
        else:
            values["status"] = PARTIAL
        values["finished_at"] = utcnow()
    elif statuses & {IN_PROGRESS, PROCESSING, COMPLETED, PARTIAL}:
        values["status"] = IN_PROGRESS
    await session.execute(
        update(Order)
        .where(Order.id == parent_id, Order.status.in_(ACTIVE_STATUSES))
        .values(**values)
    )


@dataclass(frozen=True)
class OrderFilter:
    """A user's order history: newest first, `before` is the cursor (the last id seen)."""

    status: str | None = None
    service_id: int | None = None
    link: str | None = None  # a substring of the link, case-insensitive
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    before: int | None = None


async def list_own_orders(
    session: AsyncSession, user_id: int, where: OrderFilter, limit: int
) -> list[Order]:
    stmt = (
        select(Order)
        .where(Order.user_id == user_id, Order.parent_id.is_(None))
        .order_by(Order.id.desc())
        .limit(limit)
    )
    if where.status is not None:
        stmt = stmt.where(Order.status == where.status)
    if where.service_id is not None:
        stmt = stmt.where(Order.service_id == where.service_id)
    if where.link:
        stmt = stmt.where(Order.link.icontains(where.link, autoescape=True))
    if where.since is not None:
        stmt = stmt.where(Order.created_at >= where.since)
    if where.until is not None:
        stmt = stmt.where(Order.created_at < where.until)
    if where.before is not None:
        stmt = stmt.where(Order.id < where.before)
    return list(await session.scalars(stmt))


async def runs_of(session: AsyncSession, parent_id: int) -> list[Order]:
    """A drip-feed order's runs the panel sends itself, in order."""
    return list(
        await session.scalars(select(Order).where(Order.parent_id == parent_id).order_by(Order.id))
    )
