"""Ordering pages: new order (the fields of the service's type), mass order, the orders
list with its status tabs, an order's refills and drip-feed runs, refill and cancel. Every
action calls the functions behind /client/v1; a refusal is shown next to its field, in
the page's language."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.catalog import service as catalog
from app.catalog.models import Service
from app.client import orders as ordering
from app.client.router import field_names, rate_text
from app.db import after_commit
from app.errors import DomainError
from app.orders import service as orders
from app.orders.models import ACTIVE_STATUSES, COMPLETED, PARTIAL, STATUSES, Order
from app.orders.types import LINES, PACKAGE, SubscriptionsType, TypeSpec, handler_for
from app.refills import service as refills
from app.refills.models import Refill
from app.web.forms import posted
from app.web.render import Visitor, page, redirect, signed_in

router = APIRouter()
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
    "expiry": "Expiry (d/m/Y)",
}


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


def field_of(message: str) -> str:
    """The form field an API error belongs to ("" = the form as a whole)."""
    if message.startswith("Quantity"):
        return "quantity"
    if message == "Incorrect service ID" or "service type" in message:
        return "service"
    if message.startswith("Drip-feed"):
        return "runs"
    if message.startswith("Incorrect ") and " " not in message[10:]:
        return message[10:]
    if message.startswith("You have active order"):
        return "link"
    return ""


def offered_types(offered: list[catalog.OfferedService]) -> dict[str, list[str]]:
    """Each field name → the service types that take it (without the optional mark)."""
    fields: dict[str, list[str]] = {}
    for o in offered:
        for name in field_names(o.service.type):
            if name.rstrip("?") in ("runs", "interval"):
                continue
            fields.setdefault(name.rstrip("?"), []).append(o.service.type)
    return {k: sorted(set(v)) for k, v in fields.items()}


async def order_form(who: Visitor, status: int = 200, **values: object) -> Response:
    async with who.services.db.session() as db:
        offered = await catalog.list_offered(db, who.me.user_id)
    categories = list(dict.fromkeys(o.category for o in offered))
    return page(
        who,
        "order_new.html",
        status,
        offered=offered,
        categories=categories,
        fields=offered_types(offered),
        labels=LABELS,
        text_fields=TEXT_FIELDS,
        charging=charging,
        rate_text=rate_text,
        **values,
    )


@router.get("/orders/new")
async def new_order(who: Me, service: int = 0) -> Response:
    return await order_form(who, chosen=service, form={})


@router.post("/orders/new")
async def place_order(who: Me) -> Response:
    fields = await posted(who)
    if fields.pop("dripfeed", "") != "on":
        fields.pop("runs", None)
        fields.pop("interval", None)
    sent = {k: v for k, v in fields.items() if v.strip()}
    try:
        async with who.services.db.transaction() as tx:
            order_id = await ordering.place(tx, who.services.jobs, who.me.user_id, sent)
    except DomainError as exc:
        chosen = int(fields["service"]) if fields.get("service", "").isdigit() else 0
        error, where = who.error(exc.message), field_of(exc.message)
        return await order_form(
            who, 422, chosen=chosen, form=fields, error=error, error_field=where
        )
    return redirect(who, f"/web/orders?placed={order_id}")


@router.get("/orders/mass")
async def mass_page(who: Me) -> Response:
    return page(who, "order_mass.html", text="", results=None)


@router.post("/orders/mass")
async def mass(who: Me) -> Response:
    fields = await posted(who)
    text = fields.get("lines", "")
    try:
        async with who.services.db.transaction() as tx:
            results = await ordering.place_mass(tx, who.services.jobs, who.me.user_id, text)
    except DomainError as exc:
        return page(
            who, "order_mass.html", 422, text=text, results=None, error=who.error(exc.message)
        )
    return page(who, "order_mass.html", text="", results=results)


async def services_by_id(db: AsyncSession, ids: set[int]) -> dict[int, Service]:
    if not ids:
        return {}
    return {s.id: s for s in await db.scalars(select(Service).where(Service.id.in_(ids)))}


def may_cancel(order: Order, service: Service | None) -> bool:
    """Cancel is offered where the service allows it, on an active order not under review."""
    allowed = service is not None and service.cancel and order.review_ticket_id is None
    return allowed and order.status in ACTIVE_STATUSES


def may_refill(order: Order, service: Service | None) -> bool:
    allowed = service is not None and service.refill and order.review_ticket_id is None
    return allowed and order.status in (COMPLETED, PARTIAL)


@router.get("/orders")
async def list_orders(
    who: Me, status: str = "", q: str = "", before: int = 0, placed: int = 0, done: str = ""
) -> Response:
    status = status if status in STATUSES else ""
    needle = q.strip()[:200]
    async with who.services.db.session() as db:
        if needle.isdigit() and len(needle) < 19:
            try:
                rows = [await orders.get_own_order(db, who.me.user_id, int(needle))]
            except DomainError:
                rows = []
        else:
            where = orders.OrderFilter(
                status or None, None, needle or None, None, None, before or None
            )
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
async def order_detail(who: Me, order_id: int) -> Response:
    async with who.services.db.session() as db:
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
        service=service,
        may_cancel=may_cancel,
        may_refill=may_refill,
    )


@router.post("/orders/{order_id}/cancel")
async def cancel(who: Me, order_id: int) -> Response:
    await posted(who)
    jobs = who.services.jobs
    try:
        async with who.services.db.transaction() as tx:
            for due in await orders.cancel_order(tx, who.me.user_id, order_id):
                after_commit(tx, partial(jobs.relay_cancel, due))
    except DomainError as exc:
        return page(who, "message.html", 409, message=who.error(exc.message))
    return redirect(who, f"/web/orders?done=canceled&q={order_id}")


@router.post("/orders/{order_id}/refill")
async def refill(who: Me, order_id: int) -> Response:
    await posted(who)
    try:
        async with who.services.db.transaction() as tx:
            made = await refills.request_refill(tx, who.me.user_id, order_id)
            if made.upstream_state == "queued":
                after_commit(tx, partial(who.services.jobs.relay_refill, made.id))
    except DomainError as exc:
        return page(who, "message.html", 409, message=who.error(exc.message))
    return redirect(who, f"/web/orders?done=refill&q={order_id}")
