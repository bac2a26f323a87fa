"""The sandbox's control endpoints (/sandbox/…), for the tests, the benchmarks and the
demo: what it has seen (stats: `add` calls per service, orders, links ordered twice,
balances), forcing an order's status, how a service behaves, and changing the catalog and
the balances as a real provider would, so that catalog sync, pricing and failover are
tested against a real server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, HTTPException

from app.money import format_money
from app.sandbox.books import Sandbox
from app.sandbox.config import SandboxService

# What `behaviour` may change of a service.
BEHAVIOUR_FIELDS = ("behaviour", "partial_percent", "error", "delay_seconds", "timeout_seconds")
CATALOG_ANSWERS = ("normal", "empty", "error")


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


def shown(service: SandboxService) -> dict[str, Any]:
    return {k: str(v) for k, v in asdict(service).items()}


def catalog_fields(body: dict[str, Any]) -> dict[str, Any]:
    unknown = set(body) - set(CATALOG_FIELDS)
    if unknown:
        raise HTTPException(422, f"unknown fields: {sorted(unknown)}")
    return {name: CATALOG_FIELDS[name](value) for name, value in body.items()}


def stats_of(sandbox: Sandbox) -> dict[str, Any]:
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


def service_of(sandbox: Sandbox, service_id: int) -> SandboxService:
    service = sandbox.services.get(service_id)
    if service is None:
        raise HTTPException(404, "no such service")
    return service


def control_router(sandbox: Sandbox) -> APIRouter:
    router = APIRouter(prefix="/sandbox")
    _observe(router, sandbox)
    _catalog(router, sandbox)
    return router


def _observe(router: APIRouter, sandbox: Sandbox) -> None:
    """What the sandbox has seen, and how its orders and services behave."""

    @router.get("/stats")
    async def stats() -> dict[str, Any]:
        return stats_of(sandbox)

    @router.post("/orders/{order_id}/force")
    async def force(order_id: int, body: dict[str, Any]) -> dict[str, Any]:
        order = sandbox.orders.get(order_id)
        if order is None:
            raise HTTPException(404, "no such order")
        order.forced = body
        return sandbox.view(order)

    @router.post("/services/{service_id}/behaviour")
    async def behaviour(service_id: int, body: dict[str, Any]) -> dict[str, Any]:
        service = service_of(sandbox, service_id)
        for name, value in body.items():
            if name in BEHAVIOUR_FIELDS:
                setattr(service, name, value)
        return shown(service)

    @router.put("/balances/{key}")
    async def set_balance(key: str, body: dict[str, Any]) -> dict[str, str]:
        """Set the balance of an API key (creating the key if needed)."""
        sandbox.balances[key] = Decimal(str(body["balance"]))
        return {"key": key, "balance": format_money(sandbox.balances[key])}


def _catalog(router: APIRouter, sandbox: Sandbox) -> None:
    """The catalog, changed as a provider changes its own."""

    @router.put("/services/{service_id}")
    async def put_service(service_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Add a service (or replace one) with the given catalog fields."""
        fields = catalog_fields({"name": f"Service {service_id}", **body})
        sandbox.services[service_id] = SandboxService(service_id, **fields)
        return shown(sandbox.services[service_id])

    @router.patch("/services/{service_id}")
    async def patch_service(service_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Change a service's catalog fields (rate, min, max, type, flags, name…)."""
        service = service_of(sandbox, service_id)
        for name, value in catalog_fields(body).items():
            setattr(service, name, value)
        return shown(service)

    @router.delete("/services/{service_id}")
    async def remove_service(service_id: int) -> dict[str, Any]:
        """Remove a service: `services` stops listing it and `add` refuses it; orders
        already placed keep progressing."""
        service = sandbox.services.pop(service_id, None)
        if service is None:
            raise HTTPException(404, "no such service")
        return shown(service)

    @router.post("/catalog")
    async def catalog_answer(body: dict[str, Any]) -> dict[str, str]:
        """How `services` answers from now on: normal, empty or error."""
        answer = str(body.get("answer", "normal"))
        if answer not in CATALOG_ANSWERS:
            raise HTTPException(422, "answer: normal, empty or error")
        sandbox.config.catalog_answer = answer
        return {"answer": answer}
