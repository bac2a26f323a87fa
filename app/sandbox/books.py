"""The sandbox provider's books and rules: balances per key, orders and refills, all in
memory (it is a stand-in for a provider). Orders progress with time, computed on every
read (Pending -> In progress with remains going down -> final, as the service's behaviour
says), and refunds go back to the balance when an order ends Partial or Canceled.
Refusals are `DomainError`s whose message is the wire string."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from typing import Any

from fastapi.responses import HTMLResponse, JSONResponse, Response

from app.errors import DomainError
from app.http.forms import as_id
from app.money import charge_for, format_money
from app.sandbox.config import SandboxConfig, SandboxService

LINE_FIELDS = {"Custom Comments": "comments", "Mentions Custom List": "usernames"}
PACKAGE_TYPES = ("Package", "Custom Comments Package")


@dataclass
class SandboxOrder:
    id: int
    key: str
    service: SandboxService
    link: str
    quantity: int
    charge: Decimal
    created: float
    fields: dict[str, str]
    start_count: int = 0
    forced: dict[str, Any] | None = None
    final: str | None = None
    refunded: Decimal = Decimal(0)


@dataclass
class SandboxRefill:
    id: int
    order_id: int
    created: float


class Sandbox:
    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.balances = dict(config.keys)
        self.services = {s.id: s for s in config.services}
        self.orders: dict[int, SandboxOrder] = {}
        self.refills: dict[int, SandboxRefill] = {}
        self.add_calls: dict[int, int] = {}
        self.lock = asyncio.Lock()
        # Request ids (SPEC §4): (key, request id) -> (order id, the add's other fields);
        # a lock per request id makes a retry wait for the request in flight.
        self.requests: dict[tuple[str, str], tuple[int, dict[str, str]]] = {}
        self.request_locks: dict[tuple[str, str], asyncio.Lock] = {}

    # Progress, computed from elapsed time on every read.

    def view(self, order: SandboxOrder) -> dict[str, Any]:
        status, remains = self._progress(order)
        body: dict[str, Any] = {
            "charge": format_money(order.charge),
            "start_count": str(order.start_count),
            "status": status,
            "remains": str(remains),
            "currency": self.config.currency,
        }
        if order.service.type == "Subscriptions":
            # Posts served so far, in proportion to the units delivered.
            per_post = max(1, as_id(order.fields.get("max", "")) or 1)
            body["posts"] = str((order.quantity - remains) // per_post)
            body["expiry"] = order.fields.get("expiry", "")
        if order.fields.get("runs"):
            body["runs"] = order.fields["runs"]
        return body

    def _progress(self, order: SandboxOrder) -> tuple[str, int]:
        if order.forced is not None:
            status = str(order.forced["status"])
            remains = int(
                order.forced.get("remains", 0 if status == "Completed" else order.quantity)
            )
            self._settle(order, status, remains)
            return status, remains
        if order.final is not None:
            return self._final_view(order)
        elapsed = time.monotonic() - order.created
        start, done = self.config.seconds_to_start, self.config.seconds_to_complete
        if elapsed < start:
            return "Pending", order.quantity
        if elapsed < done:
            delivered = int(order.quantity * (elapsed - start) / max(done - start, 1e-9))
            return "In progress", order.quantity - min(delivered, order.quantity - 1)
        behaviour = order.service.behaviour
        if behaviour == "partial":
            delivered = order.quantity * order.service.partial_percent // 100
            self._settle(order, "Partial", order.quantity - delivered)
        elif behaviour == "cancel":
            self._settle(order, "Canceled", order.quantity)
        else:
            self._settle(order, "Completed", 0)
        return self._final_view(order)

    def _final_view(self, order: SandboxOrder) -> tuple[str, int]:
        status = order.final or "Completed"
        if status == "Completed":
            return status, 0
        if status == "Canceled":
            return status, order.quantity
        remains = (order.forced or {}).get("remains")
        if remains is None:
            remains = order.quantity - order.quantity * order.service.partial_percent // 100
        return status, int(remains)

    def _settle(self, order: SandboxOrder, status: str, remains: int) -> None:
        if order.final is not None or status not in ("Completed", "Partial", "Canceled"):
            return
        order.final = status
        refund = Decimal(0)
        if status == "Canceled":
            refund = order.charge
        elif status == "Partial" and order.quantity:
            refund = (order.charge * max(remains, 0) / order.quantity).quantize(
                Decimal("0.00001"), rounding=ROUND_DOWN
            )
        order.refunded = min(refund, order.charge)
        self.balances[order.key] += order.refunded

    # Actions.

    def quantity_of(self, service: SandboxService, fields: dict[str, str]) -> int:
        if service.type in PACKAGE_TYPES:
            return 1
        if service.type in LINE_FIELDS:
            lines = [x for x in fields.get(LINE_FIELDS[service.type], "").splitlines() if x.strip()]
            quantity = len(lines)
        elif service.type == "Subscriptions":
            per_post = as_id(fields.get("max", "")) or 0
            if per_post < service.min or per_post > service.max:
                raise DomainError("Incorrect max")
            posts = (as_id(fields.get("posts", "")) or 1) + (
                as_id(fields.get("old_posts", "")) or 0
            )
            return per_post * posts
        else:
            text = fields.get("quantity", "").strip()
            if not text.lstrip("-").isdigit():
                raise DomainError("Incorrect quantity")
            quantity = int(text)
        if quantity < service.min:
            raise DomainError(f"Quantity less than minimal {service.min}")
        if quantity > service.max:
            raise DomainError(f"Quantity more than maximal {service.max}")
        return quantity

    async def add(self, key: str, fields: dict[str, str]) -> Response:
        request_id = fields.get("request_id") if self.config.extensions else None
        if request_id is None:
            return await self._add(key, fields)
        asked = {k: v for k, v in fields.items() if k not in ("key", "action", "request_id")}
        named = (key, request_id)
        async with self.request_locks.setdefault(named, asyncio.Lock()):
            earlier = self.requests.get(named)
            if earlier is not None:
                if earlier[1] != asked:
                    raise DomainError("Request ID already used with other parameters")
                return JSONResponse({"order": earlier[0]})
            response = await self._add(key, fields)
            try:
                answer = json.loads(bytes(response.body)) if response.status_code == 200 else None
            except ValueError:
                answer = None  # a garbled answer (the `malformed` behaviour) created nothing
            if isinstance(answer, dict) and "order" in answer:
                self.requests[named] = (int(answer["order"]), asked)
            return response

    def by_request(self, key: str, request_id: str) -> SandboxOrder | None:
        found = self.requests.get((key, request_id.strip()))
        return self.orders[found[0]] if found is not None else None

    async def _add(
        self, key: str, fields: dict[str, str], *, created_only: bool = False
    ) -> Response:
        service = self.services.get(as_id(fields.get("service", "").strip()) or 0)
        if service is None:
            raise DomainError("Incorrect service ID")
        if not created_only:
            self.add_calls[service.id] = self.add_calls.get(service.id, 0) + 1
        behaviour = "complete" if created_only else service.behaviour
        if behaviour == "drop":
            # Created, but the answer never comes in time: the caller's connection is cut.
            response = await self._add(key, fields, created_only=True)
            await asyncio.sleep(service.timeout_seconds)
            return response
        misbehaved = await self._misbehave(service, behaviour)
        if misbehaved is not None:
            return misbehaved
        return JSONResponse({"order": await self._book(key, service, fields)})

    async def _misbehave(self, service: SandboxService, behaviour: str) -> Response | None:
        """What a misbehaving provider does to an `add`: wait, fail, answer garbage or
        refuse; None when it goes on to book the order."""
        if behaviour == "slow":
            await asyncio.sleep(service.delay_seconds)
        elif behaviour == "timeout":
            await asyncio.sleep(service.timeout_seconds)
        elif behaviour == "http500":
            return JSONResponse({"error": "Internal Server Error"}, status_code=500)
        elif behaviour == "malformed":
            return HTMLResponse("<html><body>502 Bad Gateway</body></html>")
        elif behaviour == "reject":
            raise DomainError(service.error)
        return None

    async def _book(self, key: str, service: SandboxService, fields: dict[str, str]) -> int:
        """Check the order, charge the key's balance and keep the order: its id."""
        link = fields.get("link", "").strip()
        if service.type != "Subscriptions" and not link.startswith(("http://", "https://")):
            raise DomainError("Incorrect link")
        quantity = self.quantity_of(service, fields)
        runs = as_id(fields.get("runs", "")) if service.dripfeed else None
        units = quantity * (runs or 1)
        charge = service.rate if service.type in PACKAGE_TYPES else charge_for(service.rate, units)
        async with self.lock:
            if self.balances[key] < charge:
                raise DomainError("Not enough funds on balance")
            self.balances[key] -= charge
            order_id = self.config.first_order_id + len(self.orders)
            self.orders[order_id] = SandboxOrder(
                id=order_id,
                key=key,
                service=service,
                link=link,
                quantity=units,
                charge=charge,
                created=time.monotonic(),
                fields=dict(fields),
                start_count=1000 + (order_id * 7919) % 9000,
            )
        return order_id

    def own(self, key: str, text: str) -> SandboxOrder | None:
        order = self.orders.get(as_id(text.strip()) or 0)
        return order if order is not None and order.key == key else None

    def refill(self, key: str, text: str) -> Any:
        order = self.own(key, text)
        if order is None:
            return {"error": "Incorrect order ID"}
        if not order.service.refill:
            return {"error": "Refill is disabled for this service"}
        refill_id = len(self.refills) + 1
        self.refills[refill_id] = SandboxRefill(refill_id, order.id, time.monotonic())
        return refill_id

    def refill_state(self, key: str, text: str) -> Any:
        refill = self.refills.get(as_id(text.strip()) or 0)
        if refill is None or self.orders[refill.order_id].key != key:
            return {"error": "Refill not found"}
        elapsed = time.monotonic() - refill.created
        return "Completed" if elapsed >= self.config.refill_seconds else "In progress"

    def cancel(self, key: str, text: str) -> Any:
        order = self.own(key, text)
        if order is None:
            return {"error": "Incorrect order ID"}
        if not order.service.cancel:
            return {"error": "Cancel is disabled for this service"}
        status, _ = self._progress(order)
        if status in ("Completed", "Partial", "Canceled"):
            return {"error": "Order cannot be canceled"}
        order.forced = {"status": "Canceled", "remains": order.quantity}
        self._settle(order, "Canceled", order.quantity)
        return 1
