"""The simulated upstream provider: an API v2 panel whose every answer, delay and fault is
decided by the simulation's seeded generator.

It keeps the truth the auditor checks against: how many times each of our orders was
created upstream (an order must never be created twice), and every status report it sent
for each order (a refund must follow a report that was really sent).

The HTTP layer is the `Poster` protocol of app/providers/client.py: a call parks its task
(`Scheduler.park`) until the simulation decides its fate, so the real client code runs
unchanged, awaits included, and a worker can be abandoned at that await point.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx

URL = "http://provider.sim/api/v2"
FINAL = ("Completed", "Partial", "Canceled")


@dataclass
class UpOrder:
    """One order as the provider holds it."""

    id: str
    ours: int | None  # our order id, when the call came from a relay claim
    quantity: int
    status: str = "Pending"
    remains: int = 0
    start_count: int = 0
    cancel_asked: bool = False
    reports: list[tuple[str, int]] = field(default_factory=list)  # what it answered

    def report(self) -> tuple[str, int]:
        return self.status, self.remains


@dataclass
class SimProvider:
    orders: dict[str, UpOrder] = field(default_factory=dict)
    creations: Counter[int] = field(default_factory=Counter)  # our order id → creations
    refills: dict[str, str] = field(default_factory=dict)
    next_id: int = 1000

    # -- mutating calls ------------------------------------------------------------------

    def create(self, form: Mapping[str, str], ours: int | None) -> UpOrder:
        self.next_id += 1
        quantity = int(form.get("quantity") or 0)
        order = UpOrder(str(self.next_id), ours, quantity, remains=quantity)
        self.orders[order.id] = order
        if ours is not None:
            self.creations[ours] += 1
        return order

    def progress(self, rng: random.Random, *, finish_all: bool = False) -> int:
        """Move some orders forward (all of them to a final state when `finish_all`)."""
        moved = 0
        for order in sorted(self.orders.values(), key=lambda o: int(o.id)):
            if order.status in FINAL:
                continue
            if not finish_all and rng.random() < 0.5:
                continue
            moved += 1
            if order.cancel_asked:
                delivered = rng.randrange(0, order.quantity) if rng.random() < 0.4 else 0
                order.status = "Partial" if delivered else "Canceled"
                order.remains = order.quantity - delivered
            elif order.status == "Pending" and not finish_all:
                order.status = "In progress"
                order.start_count = rng.randrange(0, 5000)
                order.remains = order.quantity - rng.randrange(0, order.quantity // 2 + 1)
            else:
                roll = rng.random()
                if roll < 0.6:
                    order.status, order.remains = "Completed", 0
                elif roll < 0.85:
                    order.status = "Partial"
                    order.remains = rng.randrange(1, max(2, order.quantity))
                else:
                    order.status, order.remains = "Canceled", order.quantity
        return moved

    # -- answers --------------------------------------------------------------------------

    def status_item(
        self, order_id: str, rng: random.Random | None, *, unreadable: bool = False
    ) -> dict[str, Any]:
        """One order's status answer; with `rng`, possibly a faulty one: a duplicate or an
        older report again, or a different final status after a final one; `unreadable`:
        a Partial's remains are "Unknown" (nothing the panel may refund by)."""
        order = self.orders.get(order_id)
        if order is None:
            return {"error": "Incorrect order ID"}
        status, remains = order.report()
        if rng is not None and order.reports:
            roll = rng.random()
            if roll < 0.3:
                status, remains = rng.choice(order.reports)  # out of order: an older report
            elif roll < 0.7 and status in FINAL:
                # A flapping provider: another final status for a finished order.
                status = rng.choice([s for s in FINAL if s != status])
                remains = {"Completed": 0, "Canceled": order.quantity}.get(
                    status, rng.randrange(1, max(2, order.quantity))
                )
        if unreadable and status == "Partial":
            return {"status": status, "remains": "Unknown", "currency": "USD"}
        order.reports.append((status, remains))
        return {
            "charge": "0.10000",
            "start_count": str(order.start_count),
            "status": status,
            "remains": str(remains),
            "currency": "USD",
        }


def form_of(content: str) -> dict[str, str]:
    return dict(parse_qsl(content, keep_blank_values=True))


def json_response(body: object) -> httpx.Response:
    return httpx.Response(200, content=json.dumps(body).encode(), headers=JSON)


JSON = {"Content-Type": "application/json"}
GARBAGE = httpx.Response(200, content=b"<html><body>502 Bad Gateway</body></html>")


def request() -> httpx.Request:
    return httpx.Request("POST", URL)
