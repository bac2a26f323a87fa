"""The sandbox's API v2 endpoint: each action of the protocol answered from the books
(books.py), every refusal as `{"error": …}`. Actions are looked up in ACTIONS, one small
function each; the optional extensions (SPEC §4: capabilities, request ids) are spoken
only when the configuration says so."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from app.errors import DomainError
from app.http.forms import as_id, read_fields, split_ids
from app.money import format_money
from app.sandbox.books import Sandbox

MAX_BODY = 1024 * 1024
NOT_FOUND = {"error": "Incorrect order ID"}

Fields = dict[str, str]
Action = Callable[[Sandbox, str, Fields], Awaitable[Response]]


def _ids(fields: Fields, name: str) -> list[str]:
    return split_ids(fields.get(name), 100)


async def add(sandbox: Sandbox, key: str, fields: Fields) -> Response:
    return await sandbox.add(key, fields)


async def services(sandbox: Sandbox, key: str, fields: Fields) -> Response:
    answer = sandbox.config.catalog_answer
    if answer == "empty":
        return JSONResponse([])
    if answer == "error":
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


async def capabilities(sandbox: Sandbox, key: str, fields: Fields) -> Response:
    if not sandbox.config.extensions:
        raise DomainError("Incorrect request")
    return JSONResponse(
        {"request_id": True, "webhooks": False, "status_by_request_id": True, "version": "1.0.0"}
    )


async def status(sandbox: Sandbox, key: str, fields: Fields) -> Response:
    by_request = sandbox.config.extensions and "order" not in fields
    if by_request and "request_ids" in fields:
        return JSONResponse(_by_requests(sandbox, key, _ids(fields, "request_ids")))
    if by_request and "request_id" in fields and "orders" not in fields:
        found = sandbox.by_request(key, fields["request_id"])
        if found is None:
            raise DomainError("Incorrect order ID")
        return JSONResponse({**sandbox.view(found), "order": found.id})
    if "orders" in fields:
        result: dict[str, Any] = {}
        for text in _ids(fields, "orders"):
            order = sandbox.own(key, text)
            result[text] = sandbox.view(order) if order else NOT_FOUND
        return JSONResponse(result)
    order = sandbox.own(key, fields.get("order", ""))
    if order is None:
        raise DomainError("Incorrect order ID")
    return JSONResponse(sandbox.view(order))


def _by_requests(sandbox: Sandbox, key: str, given: list[str]) -> dict[str, Any]:
    named: dict[str, Any] = {}
    for text in given:
        found = sandbox.by_request(key, text)
        named[text] = {**sandbox.view(found), "order": found.id} if found else NOT_FOUND
    return named


async def refill(sandbox: Sandbox, key: str, fields: Fields) -> Response:
    if "orders" in fields:
        return JSONResponse(
            [
                {"order": as_id(t) or t, "refill": sandbox.refill(key, t)}
                for t in _ids(fields, "orders")
            ]
        )
    answer = sandbox.refill(key, fields.get("order", ""))
    return JSONResponse(answer if isinstance(answer, dict) else {"refill": str(answer)})


async def refill_status(sandbox: Sandbox, key: str, fields: Fields) -> Response:
    if "refills" in fields:
        return JSONResponse(
            [
                {"refill": as_id(t) or t, "status": sandbox.refill_state(key, t)}
                for t in _ids(fields, "refills")
            ]
        )
    state = sandbox.refill_state(key, fields.get("refill", ""))
    return JSONResponse(state if isinstance(state, dict) else {"status": state})


async def cancel(sandbox: Sandbox, key: str, fields: Fields) -> Response:
    given = _ids(fields, "orders") if "orders" in fields else [fields.get("order", "")]
    return JSONResponse([{"order": as_id(t) or t, "cancel": sandbox.cancel(key, t)} for t in given])


async def balance(sandbox: Sandbox, key: str, fields: Fields) -> Response:
    return JSONResponse(
        {"balance": format_money(sandbox.balances[key]), "currency": sandbox.config.currency}
    )


ACTIONS: dict[str, Action] = {
    "add": add,
    "services": services,
    "capabilities": capabilities,
    "status": status,
    "refill": refill,
    "refill_status": refill_status,
    "cancel": cancel,
    "balance": balance,
}


def endpoint(sandbox: Sandbox) -> Callable[[Request], Awaitable[Response]]:
    """GET/POST /api/v2 of the sandbox."""

    async def api(request: Request) -> Response:
        try:
            fields = await read_fields(request, MAX_BODY)
            key = fields.get("key", "")
            if key not in sandbox.balances:
                raise DomainError("Invalid API key")
            action = ACTIONS.get(fields.get("action", ""))
            if action is None:
                raise DomainError("Incorrect request")
            return await action(sandbox, key, fields)
        except DomainError as exc:
            return JSONResponse({"error": exc.message})

    return api
