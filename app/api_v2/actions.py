"""The full path of every API v2 action: one transaction on the session; the commands
(app/flows/commands) and the domain services decide every rule and every error message,
as they do for /client/v1 and the storefront. The lean path (lean.py) answers from single
statements when it can and comes here whenever it cannot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.accounts.service import Principal, authenticate
from app.api_v2.context import ApiV2Context
from app.api_v2.render import balance, order_status, refill_statuses, service_row
from app.catalog import service as catalog
from app.errors import DomainError, IncorrectOrderId, IncorrectRequest, RefillNotFound
from app.flows.commands import ordering
from app.http.forms import as_id, split_ids
from app.http.tx import AfterCommitJobs
from app.orders import service as orders
from app.refills import service as refills
from app.webhooks import service as webhooks

Fields = dict[str, str]
T = TypeVar("T")


class Call:
    """One API v2 call: its resources, caller and fields, its transaction and that
    transaction's after-commit queue."""

    def __init__(self, ctx: ApiV2Context, session: AsyncSession, who: Principal, fields: Fields):
        self.ctx = ctx
        self.session = session
        self.jobs = AfterCommitJobs(session, ctx.jobs)
        self.who = who
        self.fields = fields

    def ids(self, name: str) -> list[str]:
        return split_ids(self.fields.get(name), self.ctx.settings.max_ids_per_request)


async def action_services(call: Call) -> Any:
    offered = await catalog.list_offered(call.session, call.who.user_id)
    return [service_row(o) for o in offered]


async def action_add(call: Call) -> Any:
    placed = await ordering.place_order(call.session, call.jobs, call.who.user_id, call.fields)
    return {"order": placed.order_id}


def by_request_id(fields: Fields) -> bool:
    """A `status` naming orders by the client's request ids (and not by order ids)."""
    return not ({"order", "orders"} & fields.keys()) and bool(
        {"request_id", "request_ids"} & fields.keys()
    )


async def _statuses(
    call: Call, wanted: dict[str, int | None], with_order_id: bool = False
) -> dict[str, Any]:
    """Each id as given → its order's status (with `order`, when asked by request id), or
    the error of an id that names none of the caller's orders."""
    found = await orders.get_own_orders(
        call.session, call.who.user_id, [i for i in wanted.values() if i is not None]
    )
    done = await orders.runs_done(call.session, list(found.values()))
    result: dict[str, Any] = {}
    for text, order_id in wanted.items():
        order = found.get(order_id) if order_id is not None else None
        if order is None:
            result[text] = {"error": IncorrectOrderId.message}
            continue
        status = order_status(order, call.who.currency, done.get(order.id))
        result[text] = {**status, "order": order.id} if with_order_id else status
    return result


async def _status_by_request_id(call: Call) -> Any:
    multi = "request_ids" in call.fields
    given = call.ids("request_ids") if multi else [call.fields.get("request_id", "").strip()]
    named = await orders.order_ids_by_request(call.session, call.who.user_id, given)
    result = await _statuses(call, {text: named.get(text) for text in given}, with_order_id=True)
    if multi:
        return result
    answer: dict[str, Any] = result[given[0]]
    if "error" in answer:
        raise IncorrectOrderId()
    return answer


async def action_status(call: Call) -> Any:
    if by_request_id(call.fields):
        return await _status_by_request_id(call)
    if "orders" in call.fields:
        return await _statuses(call, {text: as_id(text) for text in call.ids("orders")})
    order_id = as_id(call.fields.get("order", "").strip())
    if order_id is None:
        raise IncorrectOrderId()
    answer: dict[str, Any] = (await _statuses(call, {"": order_id}))[""]
    if "error" in answer:
        raise IncorrectOrderId()
    return answer


def _outcomes(
    given: list[str], done: Sequence[T | DomainError], answer: Callable[[T], Any]
) -> list[tuple[int | str, Any]]:
    """Each id as given with its answer: a text that is no id is an Incorrect order ID;
    the others take the commands' results (`done`, in order) as `answer` renders them, a
    refusal as its error."""
    results = iter(done)
    out: list[tuple[int | str, Any]] = []
    for text in given:
        order_id = as_id(text)
        if order_id is None:
            out.append((text, {"error": IncorrectOrderId.message}))
            continue
        result = next(results)
        if isinstance(result, DomainError):
            out.append((order_id, {"error": result.message}))
        else:
            out.append((order_id, answer(result)))
    return out


def _ids(given: list[str]) -> list[int]:
    return [i for i in (as_id(text) for text in given) if i is not None]


async def refill_each(call: Call, given: list[str]) -> list[dict[str, Any]]:
    made = await ordering.request_refills(call.session, call.jobs, call.who.user_id, _ids(given))
    done = _outcomes(given, made, lambda r: r.refill_id)
    return [{"order": oid, "refill": result} for oid, result in done]


def cancel_given(fields: Fields, limit: int) -> list[str]:
    """The ids a cancel names, as given (`order` is taken whole)."""
    return (
        split_ids(fields.get("orders"), limit) if "orders" in fields else [fields.get("order", "")]
    )


async def action_refill(call: Call) -> Any:
    if "orders" in call.fields:
        return await refill_each(call, call.ids("orders"))
    order_id = as_id(call.fields.get("order", "").strip())
    if order_id is None:
        raise IncorrectOrderId()
    made = await ordering.request_refill(call.session, call.jobs, call.who.user_id, order_id)
    return {"refill": str(made.refill_id)}


async def action_refill_status(call: Call) -> Any:
    if "refills" in call.fields:
        wanted = {text: as_id(text) for text in call.ids("refills")}
        found = await refills.get_own_refills(
            call.session, call.who.user_id, [i for i in wanted.values() if i is not None]
        )
        return refill_statuses(wanted, {i: r.status for i, r in found.items()})
    refill_id = as_id(call.fields.get("refill", "").strip())
    if refill_id is None:
        raise RefillNotFound()
    refill = await refills.get_own_refill(call.session, call.who.user_id, refill_id)
    return {"status": refill.status}


async def cancel_each(call: Call, given: list[str]) -> list[dict[str, Any]]:
    asked = _ids(given)
    canceled = await ordering.cancel_orders(call.session, call.jobs, call.who.user_id, asked)
    done = _outcomes(given, canceled, lambda _: 1)
    return [{"order": oid, "cancel": result} for oid, result in done]


async def action_cancel(call: Call) -> Any:
    return await cancel_each(call, cancel_given(call.fields, call.ctx.settings.max_ids_per_request))


async def action_balance(call: Call) -> Any:
    amount = await call.session.scalar(select(User.balance).where(User.id == call.who.user_id))
    assert amount is not None
    return balance(amount, call.who.currency)


# The optional extensions this panel speaks (SPEC §4), answered to `capabilities`.
EXTENSIONS_VERSION = "1.0.0"


def capabilities() -> dict[str, Any]:
    return {
        "request_id": True,
        "webhooks": True,
        "status_by_request_id": True,
        "version": EXTENSIONS_VERSION,
    }


async def action_capabilities(call: Call) -> Any:
    return capabilities()


async def action_webhook(call: Call) -> Any:
    """Set the caller's status webhook (`url`; empty removes it): the signing secret is
    in this answer only."""
    done = await webhooks.set_endpoint(
        call.session, call.ctx.settings, call.who.user_id, call.fields.get("url", "")
    )
    return {"webhook": done.url, "secret": done.secret} if done.secret else {"webhook": ""}


ACTIONS: dict[str, Callable[[Call], Awaitable[Any]]] = {
    "capabilities": action_capabilities,
    "webhook": action_webhook,
    "services": action_services,
    "add": action_add,
    "status": action_status,
    "refill": action_refill,
    "refill_status": action_refill_status,
    "cancel": action_cancel,
    "balance": action_balance,
}


async def run(ctx: ApiV2Context, fields: Fields, work: Callable[[Call], Awaitable[Any]]) -> Any:
    """`work` as the key's user in one transaction (committed before it returns; the work
    registered with after_commit runs then)."""
    async with ctx.db.transaction() as session:
        who = await authenticate(session, fields.get("key"))
        return await work(Call(ctx, session, who, fields))


async def run_action(ctx: ApiV2Context, name: str, fields: Fields) -> Any:
    """The answer of an action by the full path (IncorrectRequest for an unknown one,
    after the key is checked, as clients expect)."""
    action = ACTIONS.get(name)

    async def work(call: Call) -> Any:
        if action is None:
            raise IncorrectRequest()
        return await action(call)

    return await run(ctx, fields, work)
