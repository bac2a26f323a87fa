"""Following what runs over time: the customer's drip-feed orders with their runs, their
subscriptions with what they deliver per post and until when, and their refills. Pages
only: each reads the customer's own orders and refills (the actions stay on the order's
page and go through the ordering commands)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends
from fastapi.responses import Response
from sqlalchemy import func, select

from app.catalog.models import Service
from app.http.tx import Reader
from app.orders.models import COMPLETED, Order
from app.orders.types import SubscriptionsType
from app.refills.models import Refill
from app.web.render import Visitor, page, signed_in

router = APIRouter()
Me = Annotated[Visitor, Depends(signed_in)]
PAGE_SIZE = 25
SUBSCRIPTIONS = SubscriptionsType.name
Row = TypeVar("Row", Order, Refill)


def per_run(order: Order) -> int:
    """Units of one run (the order's quantity covers every run)."""
    return order.quantity // order.runs if order.runs else order.quantity


def run_starts(order: Order, runs: list[Order]) -> list[datetime]:
    """When each of a drip-feed order's runs is due: one interval after the one before."""
    step = timedelta(minutes=order.interval_minutes or 0)
    return [order.created_at + step * index for index in range(len(runs))]


def page_of(rows: list[Row]) -> tuple[list[Row], int | None]:
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    return rows, (rows[-1].id if more and rows else None)


async def names_of(db: Reader, ids: set[int]) -> dict[int, Service]:
    if not ids:
        return {}
    return {s.id: s for s in await db.scalars(select(Service).where(Service.id.in_(ids)))}


@router.get("/drip-feed")
async def drip_feed(who: Me, db: Reader, before: int = 0) -> Response:
    """Drip-feed orders, newest first, each with its runs done out of its runs (the runs
    the panel sends itself are child orders; a provider that drip-feeds reports one
    order)."""
    stmt = (
        select(Order)
        .where(Order.user_id == who.me.user_id, Order.parent_id.is_(None), Order.runs.is_not(None))
        .order_by(Order.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    if before:
        stmt = stmt.where(Order.id < before)
    rows, next_before = page_of(list(await db.scalars(stmt)))
    counted = await db.execute(
        select(Order.parent_id, func.count())
        .where(Order.parent_id.in_([o.id for o in rows]), Order.status == COMPLETED)
        .group_by(Order.parent_id)
    )
    done = {parent: int(n) for parent, n in counted.all()}
    return page(
        who,
        "drip_feed.html",
        orders=rows,
        services=await names_of(db, {o.service_id for o in rows}),
        done=done,
        per_run=per_run,
        before=before,
        next_before=next_before,
    )


@router.get("/subscriptions")
async def subscriptions(who: Me, db: Reader, before: int = 0) -> Response:
    stmt = (
        select(Order)
        .where(
            Order.user_id == who.me.user_id,
            Order.parent_id.is_(None),
            Order.type == SUBSCRIPTIONS,
        )
        .order_by(Order.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    if before:
        stmt = stmt.where(Order.id < before)
    rows, next_before = page_of(list(await db.scalars(stmt)))
    return page(
        who,
        "subscriptions.html",
        orders=rows,
        services=await names_of(db, {o.service_id for o in rows}),
        before=before,
        next_before=next_before,
    )


@router.get("/refills")
async def refills(who: Me, db: Reader, before: int = 0) -> Response:
    stmt = (
        select(Refill)
        .where(Refill.user_id == who.me.user_id)
        .order_by(Refill.id.desc())
        .limit(PAGE_SIZE + 1)
    )
    if before:
        stmt = stmt.where(Refill.id < before)
    rows, next_before = page_of(list(await db.scalars(stmt)))
    orders = {
        o.id: o
        for o in await db.scalars(select(Order).where(Order.id.in_({r.order_id for r in rows})))
    }
    return page(
        who,
        "refills.html",
        refills=rows,
        orders=orders,
        services=await names_of(db, {o.service_id for o in orders.values()}),
        before=before,
        next_before=next_before,
    )
