"""POST/GET /api/v2: the action-style public API, wire-compatible with API v2."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Receive, Scope, Send

from app.accounts.models import User
from app.accounts.service import Principal, authenticate
from app.api_v2 import docs
from app.api_v2.render import order_status, service_row
from app.catalog import service as catalog
from app.context import AppContext, get_context
from app.db import after_commit, utcnow
from app.errors import (
    DomainError,
    IncorrectOrderId,
    IncorrectRequest,
    RefillNotFound,
)
from app.http.forms import as_id, read_fields, split_ids
from app.http.security import RateLimited, check_rate
from app.metrics import REQUEST_SECONDS, REQUESTS
from app.money import format_money
from app.orders import service as orders
from app.refills import service as refills

log = logging.getLogger(__name__)
router = APIRouter(tags=["API v2"])

Fields = dict[str, str]


class Call:
    """One API v2 call: its resources, caller and fields. Work that must follow the commit
    is registered on the session (`app.db.after_commit`)."""

    def __init__(self, ctx: AppContext, session: AsyncSession, who: Principal, fields: Fields):
        self.ctx = ctx
        self.session = session
        self.who = who
        self.fields = fields

    def ids(self, name: str) -> list[str]:
        return split_ids(self.fields.get(name), self.ctx.settings.max_ids_per_request)


async def action_services(call: Call) -> Any:
    offered = await catalog.list_offered(call.session, call.who.user_id)
    return [service_row(o) for o in offered]


async def action_add(call: Call) -> Any:
    placed = await orders.place_order(call.session, call.who.user_id, call.fields)
    # Due now: enqueue after commit. Later drip-feed runs are enqueued by the sweeper when
    # they fall due, so nothing waits in Redis that the database does not also know.
    now = utcnow()
    for order_id, due in placed.relays:
        if due <= now:
            after_commit(call.session, partial(call.ctx.jobs.relay_order, order_id))
    return {"order": placed.order_id}


async def action_status(call: Call) -> Any:
    if "orders" in call.fields:
        given = call.ids("orders")
        wanted = {text: as_id(text) for text in given}
        found = await orders.get_own_orders(
            call.session, call.who.user_id, [i for i in wanted.values() if i is not None]
        )
        done = await orders.runs_done(call.session, list(found.values()))
        result: dict[str, Any] = {}
        for text, order_id in wanted.items():
            order = found.get(order_id) if order_id is not None else None
            result[text] = (
                order_status(order, call.who.currency, done.get(order.id))
                if order is not None
                else {"error": IncorrectOrderId.message}
            )
        return result
    order_id = as_id(call.fields.get("order", "").strip())
    if order_id is None:
        raise IncorrectOrderId()
    order = (await orders.get_own_orders(call.session, call.who.user_id, [order_id])).get(order_id)
    if order is None:
        raise IncorrectOrderId()
    done = await orders.runs_done(call.session, [order])
    return order_status(order, call.who.currency, done.get(order.id))


async def _each(
    call: Call, given: list[str], missing: DomainError, one: Callable[[int], Awaitable[Any]]
) -> list[tuple[int | str, Any]]:
    """Run `one` per id in its own savepoint; a refusal of one id never affects another."""
    out: list[tuple[int | str, Any]] = []
    for text in given:
        item_id = as_id(text)
        if item_id is None:
            out.append((text, {"error": missing.message}))
            continue
        try:
            async with call.session.begin_nested():
                out.append((item_id, await one(item_id)))
        except DomainError as exc:
            out.append((item_id, {"error": exc.message}))
    return out


async def _refill_one(call: Call, order_id: int) -> int:
    refill = await refills.request_refill(call.session, call.who.user_id, order_id)
    if refill.upstream_state == "queued":
        after_commit(call.session, partial(call.ctx.jobs.relay_refill, refill.id))
    return refill.id


async def action_refill(call: Call) -> Any:
    if "orders" in call.fields:
        done = await _each(
            call, call.ids("orders"), IncorrectOrderId(), lambda i: _refill_one(call, i)
        )
        return [{"order": oid, "refill": result} for oid, result in done]
    order_id = as_id(call.fields.get("order", "").strip())
    if order_id is None:
        raise IncorrectOrderId()
    return {"refill": str(await _refill_one(call, order_id))}


async def action_refill_status(call: Call) -> Any:
    if "refills" in call.fields:
        given = call.ids("refills")
        wanted = {text: as_id(text) for text in given}
        found = await refills.get_own_refills(
            call.session, call.who.user_id, [i for i in wanted.values() if i is not None]
        )
        rows: list[dict[str, Any]] = []
        for text, refill_id in wanted.items():
            refill = found.get(refill_id) if refill_id is not None else None
            rows.append(
                {
                    "refill": refill_id if refill_id is not None else text,
                    "status": refill.status
                    if refill is not None
                    else {"error": RefillNotFound.message},
                }
            )
        return rows
    refill_id = as_id(call.fields.get("refill", "").strip())
    if refill_id is None:
        raise RefillNotFound()
    refill = await refills.get_own_refill(call.session, call.who.user_id, refill_id)
    return {"status": refill.status}


async def _cancel_one(call: Call, order_id: int) -> int:
    for due in await orders.cancel_order(call.session, call.who.user_id, order_id):
        after_commit(call.session, partial(call.ctx.jobs.relay_cancel, due))
    return 1


async def action_cancel(call: Call) -> Any:
    given = call.ids("orders") if "orders" in call.fields else [call.fields.get("order", "")]
    done = await _each(call, given, IncorrectOrderId(), lambda i: _cancel_one(call, i))
    return [{"order": oid, "cancel": result} for oid, result in done]


async def action_balance(call: Call) -> Any:
    balance = await call.session.scalar(select(User.balance).where(User.id == call.who.user_id))
    assert balance is not None
    return {"balance": format_money(balance), "currency": call.who.currency}


ACTIONS: dict[str, Callable[[Call], Awaitable[Any]]] = {
    "services": action_services,
    "add": action_add,
    "status": action_status,
    "refill": action_refill,
    "refill_status": action_refill_status,
    "cancel": action_cancel,
    "balance": action_balance,
}


def _error(message: str, status_code: int = 200) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status_code)


async def handle(request: Request) -> Response:
    started = time.perf_counter()
    response = await _handle(request)
    action = getattr(request.state, "action", "unknown")
    outcome = "error" if response.status_code != 200 or b'"error"' in response.body[:10] else "ok"
    REQUESTS.labels(action, outcome).inc()
    REQUEST_SECONDS.labels(action).observe(time.perf_counter() - started)
    return response


async def _fast(ctx: AppContext, name: str, fields: Fields) -> Response | None:
    """`add` and `status` in one statement when the hot path can answer, else None."""
    if name == "add":
        placed = await ctx.hot.add(fields)
        if placed is None:
            return None
        if placed.queued:
            await ctx.jobs.relay_order(placed.order_id)
        return JSONResponse({"order": placed.order_id})
    if name == "status" and ("orders" in fields or "order" in fields):
        multi = "orders" in fields
        given = (
            split_ids(fields["orders"], ctx.settings.max_ids_per_request)
            if multi
            else [fields["order"].strip()]
        )
        wanted = {text: as_id(text) for text in given}
        body = await ctx.hot.statuses(fields.get("key") or "", wanted)
        if body is None:
            return None
        if multi:
            return Response(body, media_type="application/json")
        answer = json.loads(body)[given[0]]
        return None if "error" in answer else JSONResponse(answer)
    return None


async def _handle(request: Request) -> Response:
    ctx = get_context(request)
    try:
        fields = await read_fields(request, ctx.settings.api_max_body_bytes)
        await check_rate(
            ctx.jobs.redis,
            ip=request.client.host if request.client else "unknown",
            key=fields.get("key"),
            per_ip=ctx.settings.rate_limit_per_ip,
            per_key=ctx.settings.rate_limit_per_key,
        )
        name = fields.get("action", "").strip().lower()
        fast = await _fast(ctx, name, fields)
        if fast is not None:
            request.state.action = name
            return fast
        async with ctx.db.transaction() as session:
            who = await authenticate(session, fields.get("key"))
            action = ACTIONS.get(name)
            request.state.action = name if action is not None else "unknown"
            if action is None:
                raise IncorrectRequest()
            call = Call(ctx, session, who, fields)
            result = await action(call)
    except DomainError as exc:
        return _error(exc.message)
    except RateLimited as exc:
        response = _error("Too many requests, try again later", 429)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except (OperationalError, DBAPIError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        log.exception("api v2 call failed on infrastructure")
        return _error("Service temporarily unavailable, try again later", 503)
    return JSONResponse(result)


class DirectRoute:
    """Serves GET/POST /api/v2 straight from the middleware stack, ahead of the
    framework's routing and dependency resolution (the hot path of every reseller
    script). The route below stays registered for the OpenAPI document; both run the
    same `handle`."""

    path = "/api/v2"  # read as the route label by the request metrics

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == self.path
            and scope["method"] in ("GET", "POST")
        ):
            scope["route"] = self
            response = await handle(Request(scope, receive))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


for method in ("POST", "GET"):
    router.add_api_route(
        "/api/v2",
        handle,
        methods=[method],
        operation_id=f"api_v2_{method.lower()}",
        summary=f"API v2 (action-style, {method})",
        description=docs.DESCRIPTION,
        openapi_extra=docs.OPENAPI_EXTRA,
        response_class=JSONResponse,
    )
