"""The sandbox provider: a real API v2 server with its own users, balances and catalog.

Orders progress with time (Pending → In progress with remains going down → final), and
each service can be told how to behave: complete, end Partial, cancel, refuse `add` with
a given error, answer slowly, time out, answer HTTP 500 or garbage. It powers the demo,
the tests and the benchmarks. State lives in memory: it is a stand-in for a provider.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from app.errors import DomainError
from app.http.forms import as_id, read_fields, split_ids
from app.money import charge_for, format_money

ADD_BEHAVIOURS = ("reject", "slow", "timeout", "http500", "malformed")
FINAL_BEHAVIOURS = ("complete", "partial", "cancel")
LINE_FIELDS = {"Custom Comments": "comments", "Mentions Custom List": "usernames"}
PACKAGE_TYPES = ("Package", "Custom Comments Package")


@dataclass
class SandboxService:
    id: int
    name: str
    type: str = "Default"
    category: str = "Sandbox"
    rate: Decimal = Decimal("0.50")
    min: int = 10
    max: int = 100_000
    refill: bool = True
    cancel: bool = True
    dripfeed: bool = False
    behaviour: str = "complete"
    partial_percent: int = 50  # share delivered when behaviour is "partial"
    error: str = "Incorrect service ID"  # answer to add when behaviour is "reject"
    delay_seconds: float = 0.0  # "slow": wait before answering add
    timeout_seconds: float = 3600.0  # "timeout": how long add hangs


@dataclass
class SandboxConfig:
    keys: dict[str, Decimal] = field(default_factory=lambda: {"sandbox-key": Decimal(1000)})
    services: list[SandboxService] = field(default_factory=list)
    seconds_to_start: float = 5.0
    seconds_to_complete: float = 30.0
    refill_seconds: float = 5.0
    currency: str = "USD"
    # How `services` answers: "normal", "empty" (an empty list) or "error" ({"error": …}).
    catalog_answer: str = "normal"
    # Speaks the optional extensions (SPEC §4: capabilities, request ids); False: a
    # standard panel that knows nothing of them.
    extensions: bool = True
    # The id of the first order it creates (then one more each). Its orders live in
    # memory: a sandbox restarted for a panel that kept its database starts past the ids
    # it gave before, as a real provider never gives one id twice.
    first_order_id: int = 1


def default_sandbox_config() -> SandboxConfig:
    """A demo catalog: the ids match the demo services of the panel."""
    return SandboxConfig(
        keys={"sandbox-key": Decimal(100_000)},
        services=[
            SandboxService(
                1,
                "Instagram Followers",
                rate=Decimal("0.45"),
                min=50,
                max=10000,
                category="Instagram",
                dripfeed=True,
            ),
            SandboxService(
                2,
                "Instagram Likes",
                rate=Decimal("0.15"),
                min=20,
                max=50000,
                category="Instagram",
                refill=False,
            ),
            SandboxService(
                3,
                "YouTube Views",
                rate=Decimal("0.60"),
                min=100,
                max=1_000_000,
                category="YouTube",
                cancel=False,
            ),
            SandboxService(
                4,
                "YouTube Channel Package",
                type="Package",
                rate=Decimal("2.50"),
                min=1,
                max=1,
                category="YouTube",
                refill=False,
                cancel=False,
            ),
            SandboxService(
                5,
                "Instagram Custom Comments",
                type="Custom Comments",
                rate=Decimal("10"),
                min=1,
                max=1000,
                category="Instagram",
            ),
            SandboxService(
                6,
                "Instagram Comments Package",
                type="Custom Comments Package",
                rate=Decimal("5"),
                min=1,
                max=1,
                category="Instagram",
            ),
            SandboxService(
                7,
                "Instagram Mentions with Hashtags",
                type="Mentions with Hashtags",
                rate=Decimal("2"),
                min=100,
                max=10000,
                category="Instagram",
            ),
            SandboxService(
                8,
                "Instagram Mentions Custom List",
                type="Mentions Custom List",
                rate=Decimal("3"),
                min=1,
                max=1000,
                category="Instagram",
            ),
            SandboxService(
                9,
                "Instagram Mentions Hashtag",
                type="Mentions Hashtag",
                rate=Decimal("2"),
                min=100,
                max=10000,
                category="Instagram",
            ),
            SandboxService(
                10,
                "Instagram Mentions User Followers",
                type="Mentions User Followers",
                rate=Decimal("2"),
                min=100,
                max=10000,
                category="Instagram",
            ),
            SandboxService(
                11,
                "Instagram Mentions Media Likers",
                type="Mentions Media Likers",
                rate=Decimal("2"),
                min=100,
                max=10000,
                category="Instagram",
            ),
            SandboxService(
                12,
                "Instagram Comment Likes",
                type="Comment Likes",
                rate=Decimal("1"),
                min=10,
                max=10000,
                category="Instagram",
            ),
            SandboxService(
                13,
                "Twitter Poll Votes",
                type="Poll",
                rate=Decimal("1"),
                min=10,
                max=10000,
                category="Twitter",
            ),
            SandboxService(
                14,
                "Telegram Invites from Groups",
                type="Invites from Groups",
                rate=Decimal("4"),
                min=10,
                max=10000,
                category="Telegram",
            ),
            SandboxService(
                15,
                "Instagram Auto Likes",
                type="Subscriptions",
                rate=Decimal("0.20"),
                min=50,
                max=10000,
                category="Instagram",
            ),
            SandboxService(
                16,
                "Website Traffic",
                type="Web Traffic",
                rate=Decimal("0.10"),
                min=100,
                max=1_000_000,
                category="Traffic",
                dripfeed=True,
            ),
        ],
    )


def load_sandbox_config(path: str | None) -> SandboxConfig:
    if not path:
        return default_sandbox_config()
    raw = json.loads(Path(path).read_text())
    services = [
        SandboxService(**{**s, "rate": Decimal(str(s.get("rate", "0.50")))})
        for s in raw.pop("services", [])
    ]
    keys = {k: Decimal(str(v)) for k, v in raw.pop("keys", {"sandbox-key": 1000}).items()}
    return SandboxConfig(keys=keys, services=services, **raw)


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
        if behaviour == "slow":
            await asyncio.sleep(service.delay_seconds)
        elif behaviour == "timeout":
            await asyncio.sleep(service.timeout_seconds)
        elif behaviour == "drop":
            # Created, but the answer never comes in time: the caller's connection is cut.
            response = await self._add(key, fields, created_only=True)
            await asyncio.sleep(service.timeout_seconds)
            return response
        elif behaviour == "http500":
            return JSONResponse({"error": "Internal Server Error"}, status_code=500)
        elif behaviour == "malformed":
            return HTMLResponse("<html><body>502 Bad Gateway</body></html>")
        elif behaviour == "reject":
            raise DomainError(service.error)
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
        return JSONResponse({"order": order_id})

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


def _ids(fields: dict[str, str], name: str) -> list[str]:
    return split_ids(fields.get(name), 100)


def create_sandbox_app(config: SandboxConfig | None = None) -> FastAPI:
    sandbox = Sandbox(config or default_sandbox_config())
    app = FastAPI(title="smm-panel sandbox provider", docs_url=None, redoc_url=None)
    app.state.sandbox = sandbox

    async def api(request: Request) -> Response:
        try:
            fields = await read_fields(request, 1024 * 1024)
            key = fields.get("key", "")
            if key not in sandbox.balances:
                raise DomainError("Invalid API key")
            return await dispatch(key, fields)
        except DomainError as exc:
            return JSONResponse({"error": exc.message})

    async def dispatch(key: str, fields: dict[str, str]) -> Response:
        action = fields.get("action", "")
        if action == "add":
            return await sandbox.add(key, fields)
        if action == "services":
            if sandbox.config.catalog_answer == "empty":
                return JSONResponse([])
            if sandbox.config.catalog_answer == "error":
                raise DomainError("Service list unavailable")
            return JSONResponse(
                [
                    {
                        "service": s.id,
                        "name": s.name,
                        "type": s.type,
                        "category": s.category,
                        "rate": str(s.rate),
                        "min": str(s.min),
                        "max": str(s.max),
                        "refill": s.refill,
                        "cancel": s.cancel,
                        "dripfeed": s.dripfeed,
                    }
                    for s in sandbox.services.values()
                ]
            )
        if action == "capabilities" and sandbox.config.extensions:
            return JSONResponse(
                {
                    "request_id": True,
                    "webhooks": False,
                    "status_by_request_id": True,
                    "version": "1.0.0",
                }
            )
        if action == "status" and sandbox.config.extensions and "order" not in fields:
            if "request_ids" in fields:
                named: dict[str, Any] = {}
                for text in _ids(fields, "request_ids"):
                    found = sandbox.by_request(key, text)
                    named[text] = (
                        {**sandbox.view(found), "order": found.id}
                        if found
                        else {"error": "Incorrect order ID"}
                    )
                return JSONResponse(named)
            if "request_id" in fields and "orders" not in fields:
                found = sandbox.by_request(key, fields["request_id"])
                if found is None:
                    raise DomainError("Incorrect order ID")
                return JSONResponse({**sandbox.view(found), "order": found.id})
        if action == "status":
            if "orders" in fields:
                result: dict[str, Any] = {}
                for text in _ids(fields, "orders"):
                    order = sandbox.own(key, text)
                    result[text] = sandbox.view(order) if order else {"error": "Incorrect order ID"}
                return JSONResponse(result)
            order = sandbox.own(key, fields.get("order", ""))
            if order is None:
                raise DomainError("Incorrect order ID")
            return JSONResponse(sandbox.view(order))
        if action == "refill":
            if "orders" in fields:
                return JSONResponse(
                    [
                        {"order": as_id(t) or t, "refill": sandbox.refill(key, t)}
                        for t in _ids(fields, "orders")
                    ]
                )
            answer = sandbox.refill(key, fields.get("order", ""))
            if isinstance(answer, dict):
                return JSONResponse(answer)
            return JSONResponse({"refill": str(answer)})
        if action == "refill_status":
            if "refills" in fields:
                return JSONResponse(
                    [
                        {"refill": as_id(t) or t, "status": sandbox.refill_state(key, t)}
                        for t in _ids(fields, "refills")
                    ]
                )
            state = sandbox.refill_state(key, fields.get("refill", ""))
            return JSONResponse(state if isinstance(state, dict) else {"status": state})
        if action == "cancel":
            given = _ids(fields, "orders") if "orders" in fields else [fields.get("order", "")]
            return JSONResponse(
                [{"order": as_id(t) or t, "cancel": sandbox.cancel(key, t)} for t in given]
            )
        if action == "balance":
            return JSONResponse(
                {
                    "balance": format_money(sandbox.balances[key]),
                    "currency": sandbox.config.currency,
                }
            )
        raise DomainError("Incorrect request")

    app.add_api_route("/api/v2", api, methods=["GET", "POST"])

    @app.get("/sandbox/stats")
    async def stats() -> dict[str, Any]:
        links: dict[str, int] = {}
        for order in sandbox.orders.values():
            links[order.link] = links.get(order.link, 0) + 1
        return {
            "add_calls": {str(k): v for k, v in sandbox.add_calls.items()},
            "orders": len(sandbox.orders),
            # Orders created more than once for the same link: a double send.
            "duplicated_links": sorted(link for link, n in links.items() if n > 1 and link),
            "balances": {k: str(v) for k, v in sandbox.balances.items()},
        }

    @app.post("/sandbox/orders/{order_id}/force")
    async def force(order_id: int, body: dict[str, Any]) -> dict[str, Any]:
        order = sandbox.orders.get(order_id)
        if order is None:
            raise HTTPException(404, "no such order")
        order.forced = body
        return sandbox.view(order)

    @app.post("/sandbox/services/{service_id}/behaviour")
    async def behaviour(service_id: int, body: dict[str, Any]) -> dict[str, Any]:
        service = sandbox.services.get(service_id)
        if service is None:
            raise HTTPException(404, "no such service")
        for name, value in body.items():
            if name in (
                "behaviour",
                "partial_percent",
                "error",
                "delay_seconds",
                "timeout_seconds",
            ):
                setattr(service, name, value)
        return {k: str(v) for k, v in asdict(service).items()}

    control(app, sandbox)
    return app


def _decimal(value: Any) -> Decimal:
    return Decimal(str(value))


CATALOG_FIELDS: dict[str, Callable[[Any], Any]] = {
    "name": str,
    "type": str,
    "category": str,
    "rate": _decimal,
    "min": int,
    "max": int,
    "refill": bool,
    "cancel": bool,
    "dripfeed": bool,
}


def control(app: FastAPI, sandbox: Sandbox) -> None:
    """Control endpoints: change the catalog and the balances as a provider would, so
    that catalog sync, pricing and failover are tested against a real server."""

    def shown(service: SandboxService) -> dict[str, Any]:
        return {k: str(v) for k, v in asdict(service).items()}

    def fields_of(body: dict[str, Any]) -> dict[str, Any]:
        unknown = set(body) - set(CATALOG_FIELDS)
        if unknown:
            raise HTTPException(422, f"unknown fields: {sorted(unknown)}")
        return {name: CATALOG_FIELDS[name](value) for name, value in body.items()}

    @app.put("/sandbox/services/{service_id}")
    async def put_service(service_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Add a service (or replace one) with the given catalog fields."""
        fields = fields_of({"name": f"Service {service_id}", **body})
        sandbox.services[service_id] = SandboxService(service_id, **fields)
        return shown(sandbox.services[service_id])

    @app.patch("/sandbox/services/{service_id}")
    async def patch_service(service_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Change a service's catalog fields (rate, min, max, type, flags, name…)."""
        service = sandbox.services.get(service_id)
        if service is None:
            raise HTTPException(404, "no such service")
        for name, value in fields_of(body).items():
            setattr(service, name, value)
        return shown(service)

    @app.delete("/sandbox/services/{service_id}")
    async def remove_service(service_id: int) -> dict[str, Any]:
        """Remove a service: `services` stops listing it and `add` refuses it; orders
        already placed keep progressing."""
        service = sandbox.services.pop(service_id, None)
        if service is None:
            raise HTTPException(404, "no such service")
        return shown(service)

    @app.post("/sandbox/catalog")
    async def catalog_answer(body: dict[str, Any]) -> dict[str, str]:
        """How `services` answers from now on: normal, empty or error."""
        answer = str(body.get("answer", "normal"))
        if answer not in ("normal", "empty", "error"):
            raise HTTPException(422, "answer: normal, empty or error")
        sandbox.config.catalog_answer = answer
        return {"answer": answer}

    @app.put("/sandbox/balances/{key}")
    async def set_balance(key: str, body: dict[str, Any]) -> dict[str, str]:
        """Set the balance of an API key (creating the key if needed)."""
        sandbox.balances[key] = Decimal(str(body["balance"]))
        return {"key": key, "balance": format_money(sandbox.balances[key])}


async def serve_sandbox(host: str, port: int, config: SandboxConfig) -> None:
    server = uvicorn.Server(
        uvicorn.Config(
            create_sandbox_app(config), host=host, port=port, access_log=False, log_config=None
        )
    )
    await server.serve()
