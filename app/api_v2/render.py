"""The exact wire shapes of API v2 (numbers inside strings where clients expect them)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from app.catalog.service import OfferedService
from app.errors import RefillNotFound
from app.money import format_money, format_rate, precision_for_rate
from app.orders.service import OrderView
from app.orders.sql import SUBSCRIPTIONS


def service_row(offered: OfferedService) -> dict[str, Any]:
    s = offered.service
    row: dict[str, Any] = {
        "service": s.id,
        "name": s.name,
        "type": s.type,
        "category": offered.category,
        "rate": format_rate(offered.rate),
        "min": str(s.min_quantity),
        "max": str(s.max_quantity),
        "refill": s.refill,
        "cancel": s.cancel,
        "dripfeed": s.dripfeed,
    }
    if s.average_seconds is not None:
        # Optional: the average completion time of recent orders, in minutes.
        row["average_time"] = str(max(1, round(s.average_seconds / 60)))
    return row


def order_status(order: OrderView, currency: str, runs_done: int | None = None) -> dict[str, Any]:
    remains = order.remains if order.remains is not None else order.quantity
    body: dict[str, Any] = {
        "charge": format_money(order.charge, precision_for_rate(order.rate)),
        "start_count": str(order.start_count or 0),
        "status": order.status,
        "remains": str(remains),
        "currency": currency,
    }
    if order.type == SUBSCRIPTIONS:
        body["posts"] = str(order.params.get("posts_done", 0))
        body["expiry"] = str(order.params.get("expiry", ""))
    if order.runs is not None:
        body["runs"] = str(order.runs)
        if runs_done is not None:
            body["runs_done"] = str(runs_done)
    return body


def balance(amount: Decimal, currency: str) -> dict[str, Any]:
    return {"balance": format_money(amount), "currency": currency}


def refill_statuses(
    wanted: Mapping[str, int | None], found: Mapping[int, str]
) -> list[dict[str, Any]]:
    """Multi refill_status: per id as given (text -> id, None where it is no id), the
    refill's status if it is the caller's."""
    rows: list[dict[str, Any]] = []
    for text, refill_id in wanted.items():
        status = found.get(refill_id) if refill_id is not None else None
        rows.append(
            {
                "refill": refill_id if refill_id is not None else text,
                "status": status if status is not None else {"error": RefillNotFound.message},
            }
        )
    return rows
