"""The console's orders: the list with every filter of /admin/v1 (status, upstream state,
provider, service, customer, link, stuck, anomaly, under review, dates; pages; CSV), one
order with its upstream history, the exact request its last attempt sent and its ledger
entries, and what an operator does: resend, mark sent with the provider's id or cancel with
a full refund an order whose upstream outcome is unknown (the review queue); set a status
by hand where the rules allow (a finished order never moves; Partial and Canceled refund
exactly once); clear an anomaly flag; and the review queue's bulk resend or cancel, first
as a dry run that only lists the orders it would take.

Every change is the review flow's or the orders domain's own (app/flows/review.py,
app/orders/operator.py), audited as /admin/v1 audits it, naming the member."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from app.catalog import service as catalog
from app.console.listing import (
    as_choice,
    as_day,
    as_id,
    as_int,
    day_end,
    day_start,
    shown,
    window,
)
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
from app.errors import DomainError, IncorrectRequest
from app.flows import review
from app.http.paths import PathId
from app.http.problems import Problem
from app.orders import operator
from app.orders.models import STATUSES, UP_DRIPFEED, UP_REVIEW, UPSTREAM_STATES, Order
from app.orders.schemas import OrderStatusIn
from app.orders.service import StatusReport
from app.pages.export import Cell
from app.providers import service as providers

router = APIRouter()
Reader = Annotated[Who, Depends(Permit("orders:read"))]
Writer = Annotated[Who, Depends(Permit("orders:write"))]

Refusals = (DomainError, Problem, ValueError)
SETTABLE = ("In progress", "Processing", "Completed", "Partial", "Canceled")
DONE = {
    "resend": N_("The order is queued to be sent again."),
    "mark_sent": N_("The order is marked sent."),
    "cancel": N_("The order is canceled with a full refund."),
    "status": N_("The status is set."),
    "status-unchanged": N_("The order already had this status: nothing changed."),
    "anomaly": N_("The anomaly flag is cleared."),
}
REVIEW_ACTIONS = {"resend": review.RESEND, "mark-sent": review.MARK_SENT, "cancel": review.CANCEL}
LIST_HEADER = [
    "ID",
    "Customer",
    "Service",
    "Provider",
    "Link",
    "Quantity",
    "Charge",
    "Refunded",
    "Status",
    "Upstream",
    "Provider order",
    "Created",
]


def search_of(who: Who) -> tuple[operator.OrderSearch, dict[str, str]]:
    """The list's filters from the query string, and as given (to fill the form again)."""
    q = who.request.query_params
    given = {k: q.get(k, "")[:500] for k in FILTERS}
    where = operator.OrderSearch(
        user_id=as_id(given["user_id"]),
        service_id=as_id(given["service_id"]),
        provider_id=as_id(given["provider_id"]),
        status=as_choice(given["status"], STATUSES),
        upstream_state=as_choice(given["upstream_state"], UPSTREAM_STATES),
        link=given["link"].strip() or None,
        created_from=day_start(as_day(given["created_from"])),
        created_to=day_end(as_day(given["created_to"])),
        anomaly=True if given["anomaly"] == "1" else None,
        stuck=True if given["stuck"] == "1" else None,
        under_review=True if given["review"] == "1" else None,
    )
    return where, given


FILTERS = (
    "status",
    "upstream_state",
    "provider_id",
    "service_id",
    "user_id",
    "link",
    "stuck",
    "anomaly",
    "review",
    "created_from",
    "created_to",
)


def csv_rows(found: list[Order]) -> list[list[Cell]]:
    return [
        [
            o.id,
            o.user_id,
            o.service_id,
            o.provider_id,
            o.link,
            o.quantity,
            o.charge,
            o.refunded,
            o.status,
            o.upstream_state,
            o.provider_order_id,
            o.created_at,
        ]
        for o in found
    ]


@router.get("/orders")
async def order_list(who: Reader, format: str = "") -> Response:
    at = window(who.request.query_params.get("page"), format)
    where, given = search_of(who)
    async with who.services.db.session() as session:
        found = await operator.search_orders(
            session,
            where,
            limit=at.limit,
            offset=at.offset,
            stuck_after_seconds=who.services.settings.stuck_after_seconds,
        )
        known = await providers.list_providers(session)
    if at.csv:
        return csv_download(who, "orders", LIST_HEADER, csv_rows(found))
    return page(
        who,
        "orders.html",
        listed=shown(found, at),
        given=given,
        providers=known,
        statuses=STATUSES,
        upstream_states=UPSTREAM_STATES,
    )


def selection_of(fields: dict[str, str], picked: list[str]) -> review.Selection:
    ids = tuple(i for i in (as_id(p) for p in picked[: review.BULK_LIMIT]) if i is not None)
    if ids:
        return review.Selection(None, None, None, ids)
    provider_id = as_id(fields.get("provider_id"))
    if provider_id is None:
        raise IncorrectRequest(N_("Select orders, or filter the list by a provider first."))
    return review.Selection(
        provider_id,
        day_start(as_day(fields.get("created_from"))),
        day_end(as_day(fields.get("created_to"))),
    )


@router.post("/orders/bulk")
async def bulk(who: Writer) -> Response:
    """The review queue's bulk action over the picked orders (or the filter's provider and
    dates): a dry run lists what it would take; the real run resends or cancels them, each
    order audited on its own."""
    fields = await posted(who)
    picked = (await who.request.form()).getlist("order")
    action = fields.get("action", "")
    dry_run = fields.get("dry_run") == "1"
    try:
        selection = selection_of(fields, [str(p) for p in picked])
        async with who.acting() as (tx, audit):
            ids = await review.run_bulk(tx, who.services.jobs, selection, action, dry_run=dry_run)
            if not dry_run:
                for order_id in ids:
                    await audit(f"review.{action}", "order", order_id, after={"bulk": True})
    except Refusals as exc:
        failure = who.error(exc)
        return page(who, "message.html", failure.status, message=failure.message)
    return page(
        who,
        "bulk.html",
        action=action,
        dry_run=dry_run,
        ids=ids,
        selection=selection,
        fields=fields,
        limited=len(ids) >= review.BULK_LIMIT,
    )


async def order_page(
    who: Who, order_id: int, failure: Failure | None = None, done: str = ""
) -> Response:
    async with who.services.db.session() as session:
        order = await operator.get_order(session, order_id)
        detail = await operator.order_detail(session, order_id)
        service = await catalog.get_service(session, order.service_id)
    return page(
        who,
        "order.html",
        failure.status if failure else 200,
        order=order,
        detail=detail,
        service=service,
        in_review=order.upstream_state == UP_REVIEW,
        settable=order.status not in ("Completed", "Partial", "Canceled")
        and order.upstream_state != UP_DRIPFEED,
        statuses=SETTABLE,
        error=failure.message if failure else "",
        done=who._(DONE[done]) if done in DONE else "",
    )


@router.get("/orders/{order_id}")
async def order_detail(who: Reader, order_id: PathId, done: str = "") -> Response:
    return await order_page(who, order_id, done=done)


def back(who: Who, order_id: int, done: str) -> Response:
    return redirect(who, f"{CONSOLE}/orders/{order_id}?done={done}")


@router.post("/orders/{order_id}/review/{action}")
async def review_action(who: Writer, order_id: PathId, action: str) -> Response:
    """An order of the review queue resent, marked sent or canceled with a full refund."""
    fields = await posted(who)
    chosen = REVIEW_ACTIONS.get(action)
    if chosen is None:
        return await order_page(who, order_id, Failure(404, who._("Not found")))
    provider_order_id = fields.get("provider_order_id", "").strip()[:64] or None
    try:
        async with who.acting() as (tx, audit):
            await review.resolve(
                tx, who.services.jobs, who.services.settings, order_id, chosen, provider_order_id
            )
            after = {"provider_order_id": provider_order_id} if chosen == review.MARK_SENT else None
            await audit(f"review.{chosen}", "order", order_id, after=after)
    except Refusals as exc:
        return await order_page(who, order_id, who.error(exc))
    return back(who, order_id, chosen)


@router.post("/orders/{order_id}/status")
async def set_status(who: Writer, order_id: PathId) -> Response:
    """A status set by hand: Completed, Partial (with what remains), Canceled (a full
    refund), In progress or Processing; refunds by rule, exactly once."""
    fields = await posted(who)
    try:
        body = OrderStatusIn.model_validate(
            {
                "status": fields.get("status", ""),
                "start_count": whole(fields.get("start_count")),
                "remains": whole(fields.get("remains")),
            }
        )
        async with who.acting() as (tx, audit):
            report = StatusReport(body.status, body.start_count, body.remains)
            done = await operator.set_status(tx, order_id, report, operator=audit.actor)
            if done.changed:
                after = operator.summary(await operator.order_detail(tx, order_id))
                await audit("order.status", "order", order_id, before=done.before, after=after)
    except Refusals as exc:
        return await order_page(who, order_id, who.error(exc))
    return back(who, order_id, "status" if done.changed else "status-unchanged")


def whole(text: str | None) -> int | None:
    """An optional whole number of a form (empty: none); anything else is refused."""
    if not (text or "").strip():
        return None
    value = as_int(text, -(10**15), 10**15)
    if value is None:
        raise ValueError(N_("Enter a whole number of at least 0."))
    return value


@router.post("/orders/{order_id}/anomaly/clear")
async def clear_anomaly(who: Writer, order_id: PathId) -> Response:
    await posted(who)
    try:
        async with who.acting() as (tx, audit):
            before = await operator.clear_anomaly(tx, order_id)
            if before is not None:
                await audit(
                    "order.anomaly.clear", "order", order_id, before=before, after={"anomaly": None}
                )
    except Refusals as exc:
        return await order_page(who, order_id, who.error(exc))
    return back(who, order_id, "anomaly")
