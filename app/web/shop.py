"""Ordering pages: new order (the fields of the service's type), mass order, the orders
list with its status tabs, an order's refills and drip-feed runs, refill and cancel. Every
action is the command API v2 and /client/v1 run too (app/flows/commands/ordering.py), in
the request's transaction; a refusal is shown next to its field, in the page's
language."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import service as catalog
from app.catalog.models import Service
from app.errors import DomainError
from app.flows.commands import ordering
from app.http.forms import as_id
from app.http.tx import Jobs, Reader, Tx
from app.legal import service as legal
from app.money import format_rate
from app.orders import service as orders
from app.orders.models import ACTIVE_STATUSES, STATUSES, Order
from app.orders.types import LINES, PACKAGE, SubscriptionsType, TypeSpec, field_names, handler_for
from app.refills import service as refills
from app.refills.models import Refill
from app.web import follow, news
from app.web.forms import posted
from app.web.render import Visitor, page, redirect, refusal, signed_in

router = APIRouter()


def client_ip(who: Visitor) -> str | None:
    return who.request.client.host if who.request.client else None


Me = Annotated[Visitor, Depends(signed_in)]
PAGE_SIZE = 20
TEXT_FIELDS = ("comments", "usernames", "groups")
LABELS = {
    "link": "Link",
    "quantity": "Quantity",
    "comments": "Comments (one per line)",
    "usernames": "Usernames",
    "hashtags": "Hashtags",
    "hashtag": "Hashtag",
    "username": "Username",
    "media": "Media URL",
    "answer_number": "Answer number",
    "groups": "Groups (one per line)",
    "runs": "Runs",
    "interval": "Interval (minutes)",
    "min": "Minimum per post",
    "max": "Maximum per post",
    "posts": "Posts",
    "old_posts": "Old posts",
    "delay": "Delay (minutes)",
    "expiry": "Expiry date",
}
# The fields of the order form a refusal may belong to (app/errors.py `field`).
ORDER_FIELDS = frozenset({"service", "accept_terms", *LABELS})


def protocol_date(value: str) -> str:
    """A date field's `YYYY-MM-DD` as the protocol's `d/m/Y`; anything else as typed
    (the command says what is wrong with it)."""
    found = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", value.strip())
    return f"{found[3]}/{found[2]}/{found[1]}" if found else value


def charging(type_name: str) -> str:
    """How the live charge is computed on the page: per 1000 units of quantity, per line
    of the type's text field, or the rate for a package."""
    try:
        handler = handler_for(type_name)
    except DomainError:
        return "none"
    if isinstance(handler, SubscriptionsType):
        return "none"
    assert isinstance(handler, TypeSpec)
    return {PACKAGE: "package", LINES: f"lines:{handler.lines_field}"}.get(
        handler.quantity, "quantity"
    )


def offered_types(offered: list[catalog.OfferedService]) -> dict[str, list[str]]:
    """Each field name → the service types that take it (without the optional mark)."""
    fields: dict[str, list[str]] = {}
    for o in offered:
        for name in field_names(o.service.type):
            if name.rstrip("?") in ("runs", "interval"):
                continue
            fields.setdefault(name.rstrip("?"), []).append(o.service.type)
    return {k: sorted(set(v)) for k, v in fields.items()}


async def order_form(
    who: Visitor, db: AsyncSession, status: int = 200, **values: object
) -> Response:
    offered = await catalog.list_offered(db, who.me.user_id)
    categories = list(dict.fromkeys(o.category for o in offered))
    # A version published since the customer's last acceptance: shown once, to tick.
    values.setdefault("terms_pending", await legal.unaccepted(db, who.me.user_id))
    return page(
        who,
        "order_new.html",
        status,
        news=await news.latest(db, who),
        offered=offered,
        categories=categories,
        fields=offered_types(offered),
        labels=LABELS,
        text_fields=TEXT_FIELDS,
        charging=charging,
        rate_text=format_rate,
        **values,
    )


@router.get("/orders/new")
async def new_order(who: Me, db: Reader, service: int = 0) -> Response:
    return await order_form(who, db, chosen=service, form={})


@router.post("/orders/new")
async def place_order(who: Me, tx: Tx, jobs: Jobs) -> Response:
    fields = await posted(who)
    if fields.pop("dripfeed", "") != "on":
        fields.pop("runs", None)
        fields.pop("interval", None)
    accepted = fields.pop("accept_terms", "") == "1"
    sent = {k: v for k, v in fields.items() if v.strip()}
    if "expiry" in sent:
        sent["expiry"] = protocol_date(sent["expiry"])
    try:
        placed = await ordering.place_order(
            tx, jobs, who.me.user_id, sent, accept_terms=accepted, ip=client_ip(who)
        )
    except DomainError as exc:
        chosen = as_id(fields.get("service", "")) or 0
        shown = refusal(who, exc, ORDER_FIELDS)
        code = 409 if isinstance(exc, legal.TermsNotAccepted) else 422
        return await order_form(who, tx, code, chosen=chosen, form=fields, **shown)
    return redirect(who, f"/web/orders?placed={placed.order_id}")


@router.get("/orders/mass")
async def mass_page(who: Me) -> Response:
    return page(who, "order_mass.html", text="", results=None)


@router.post("/orders/mass")
async def mass(who: Me, tx: Tx, jobs: Jobs) -> Response:
    fields = await posted(who)
    text = fields.get("lines", "")
    try:
        results = await ordering.place_mass(tx, jobs, who.me.user_id, text)
    except DomainError as exc:
        return page(
            who, "order_mass.html", 422, text=text, results=None, error=who.error(exc.message)
        )
    # The lines that failed stay in the box to be corrected; the others link their orders.
    lines = text.splitlines()
    failed = "\n".join(lines[r.line - 1].strip() for r in results if r.order is None)
    shown = {r.line: lines[r.line - 1].strip() for r in results}
    return page(who, "order_mass.html", text=failed, results=results, lines=shown)


async def services_by_id(db: AsyncSession, ids: set[int]) -> dict[int, Service]:
    if not ids:
        return {}
    return {s.id: s for s in await db.scalars(select(Service).where(Service.id.in_(ids)))}


def may_cancel(order: Order, service: Service | None) -> bool:
    """Cancel is offered where the service allows it, on an active order not under review."""
    allowed = service is not None and service.cancel and order.review_ticket_id is None
    return allowed and order.status in ACTIVE_STATUSES


def may_refill(order: Order, service: Service | None) -> bool:
    """Refill is offered where the service has it, on an order the refill rule accepts."""
    allowed = service is not None and service.refill and order.review_ticket_id is None
    return allowed and refills.refillable(order)


@router.get("/orders")
async def list_orders(
    who: Me,
    db: Reader,
    status: str = "",
    q: str = "",
    before: int = 0,
    placed: int = 0,
    done: str = "",
) -> Response:
    status = status if status in STATUSES else ""
    needle = q.strip()[:200]
    if needle.isdigit() and len(needle) < 19:
        try:
            rows = [await orders.get_own_order(db, who.me.user_id, int(needle))]
        except DomainError:
            rows = []
    else:
        where = orders.OrderFilter(status or None, None, needle or None, None, None, before or None)
        rows = await orders.list_own_orders(db, who.me.user_id, where, PAGE_SIZE + 1)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    by_id = await services_by_id(db, {o.service_id for o in rows})
    return page(
        who,
        "orders.html",
        orders=rows,
        services=by_id,
        statuses=STATUSES,
        status=status,
        q=needle,
        next_before=rows[-1].id if more and rows else None,
        before=before,
        placed=placed,
        done=done[:40],
        may_cancel=may_cancel,
        may_refill=may_refill,
    )


@router.get("/orders/{order_id}")
async def order_detail(who: Me, db: Reader, order_id: int) -> Response:
    try:
        order = await orders.get_own_order(db, who.me.user_id, order_id)
    except DomainError as exc:
        return page(who, "message.html", 404, message=who.error(exc.message))
    made = list(
        await db.scalars(select(Refill).where(Refill.order_id == order.id).order_by(Refill.id))
    )
    runs = await orders.runs_of(db, order.id)
    service = (await services_by_id(db, {order.service_id})).get(order.service_id)
    return page(
        who,
        "order_detail.html",
        order=order,
        refills=made,
        runs=runs,
        starts=follow.run_starts(order, runs),
        service=service,
        may_cancel=may_cancel,
        may_refill=may_refill,
    )


@router.post("/orders/{order_id}/cancel")
async def cancel(who: Me, tx: Tx, jobs: Jobs, order_id: int) -> Response:
    await posted(who)
    try:
        await ordering.cancel_order(tx, jobs, who.me.user_id, order_id)
    except DomainError as exc:
        return page(who, "message.html", 409, message=who.error(exc.message))
    return redirect(who, f"/web/orders?done=canceled&q={order_id}")


@router.post("/orders/{order_id}/refill")
async def refill(who: Me, tx: Tx, jobs: Jobs, order_id: int) -> Response:
    await posted(who)
    try:
        await ordering.request_refill(tx, jobs, who.me.user_id, order_id)
    except DomainError as exc:
        return page(who, "message.html", 409, message=who.error(exc.message))
    return redirect(who, f"/web/orders?done=refill&q={order_id}")
