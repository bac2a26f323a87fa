"""The lean path of every API v2 action: one statement on the plain asyncpg pool (or
cached bytes, for `services`), rendered by the same functions as the full path so the
answers are the same bytes. What it keeps in memory is the hot path's (hot.py): it asks,
never writes a cache itself.

Each function answers only what its statement decides with certainty and returns None
otherwise (an unknown or refused key, an order of a shape rendered in Python, a request
the full path must judge); the caller then runs the full path (actions.py), the
authority on every rule and every error message. Multi-id `refill` and `cancel` apply the
statement to the ids it can settle and hand the others, as given and in order, to the
full path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import JSONResponse, Response
from sqlalchemy import text

from app.accounts.service import hash_key
from app.api_v2 import actions
from app.api_v2.actions import Fields, cancel_each, cancel_given, refill_each
from app.api_v2.context import ApiV2Context
from app.api_v2.hot import Pricing, Rendered, usable
from app.api_v2.render import balance, refill_statuses, service_row
from app.catalog import service as catalog
from app.catalog.sql import CATALOG_PRICING, CATALOG_VERSION, PRICING_CHANNEL, USER_PRICING
from app.errors import DomainError, RefillNotFound
from app.http.forms import as_id, split_ids
from app.orders.hot import NOT_FOUND
from app.orders.models import UP_QUEUED
from app.refills.sql import REFILL_STATUSES, REQUEST_REFILLS

Lean = Callable[[ApiV2Context, Fields, str | None], Awaitable[Response | None]]


def _json(content: Any) -> Response:
    return JSONResponse(content)


def _given(fields: Fields, name: str, ctx: ApiV2Context) -> list[str] | None:
    """Ids as the full path splits them; None where it would refuse the list (it checks the
    key first, so it answers)."""
    try:
        return split_ids(fields.get(name), ctx.settings.max_ids_per_request)
    except DomainError:
        return None


def _key(fields: Fields) -> str:
    return fields.get("key") or ""


async def add(ctx: ApiV2Context, fields: Fields, _: str | None) -> Response | None:
    placed = await ctx.hot.add(fields)
    if placed is None:
        return None
    if placed.queued:
        await ctx.jobs.relay_order(placed.order_id)
    return _json({"order": placed.order_id})


async def status(ctx: ApiV2Context, fields: Fields, _: str | None) -> Response | None:
    if "orders" in fields:
        given = _given(fields, "orders", ctx)
        if given is None:
            return None
        body = await ctx.hot.statuses(_key(fields), {t: as_id(t) for t in given})
        return None if body is None else Response(body, media_type="application/json")
    if "order" not in fields:
        return await _status_by_request(ctx, fields)
    one = await ctx.hot.status(_key(fields), as_id(fields["order"].strip()))
    if one is None:
        return None
    if not one.found or one.body is None:
        return Response(NOT_FOUND, media_type="application/json")
    return Response(one.body, media_type="application/json")


async def _status_by_request(ctx: ApiV2Context, fields: Fields) -> Response | None:
    """`status` by `request_ids` (the multi answer) or `request_id` (one order's status,
    or the error when it names none of the caller's orders)."""
    if not actions.by_request_id(fields):
        return None
    if "request_ids" in fields:
        given = _given(fields, "request_ids", ctx)
    else:
        given = [fields.get("request_id", "").strip()]
    if given is None:
        return None
    answer = await ctx.hot.statuses_by_request(_key(fields), list(dict.fromkeys(given)))
    if answer is None:
        return None
    body, first = answer
    if "request_ids" in fields:
        return Response(body, media_type="application/json")
    return Response(NOT_FOUND if first is None else first, media_type="application/json")


async def capabilities(ctx: ApiV2Context, fields: Fields, _: str | None) -> Response:
    """What this panel speaks beyond the standard protocol: asked of any key (a provider
    probe must not need a funded account), the same answer for everyone."""
    return _json(actions.capabilities())


async def balance_of(ctx: ApiV2Context, fields: Fields, _: str | None) -> Response | None:
    found = await ctx.hot.balance(_key(fields))
    return None if found is None else _json(balance(*found))


async def refill_status(ctx: ApiV2Context, fields: Fields, _: str | None) -> Response | None:
    multi = "refills" in fields
    if multi:
        given = _given(fields, "refills", ctx)
        if given is None:
            return None
    else:
        given = [fields.get("refill", "").strip()]
    wanted = {t: as_id(t) for t in given}
    ids = [i for i in wanted.values() if i is not None]
    if not usable(_key(fields)):
        return None
    pool = await ctx.db.driver()
    rows = await pool.fetch(REFILL_STATUSES, hash_key(_key(fields)), ids)
    if not rows:
        return None  # the key is refused: the full path says so
    found: dict[int, str] = {r["refill_id"]: r["status"] for r in rows if r["refill_id"]}
    if multi:
        return _json(refill_statuses(wanted, found))
    state = found.get(ids[0]) if ids else None
    return _json({"status": state} if state else {"error": RefillNotFound.message})


def _settled(given: list[str]) -> list[int] | None:
    """The distinct ids of a multi-id request, or None when an id repeats (the full path
    answers a repeat by its own rule)."""
    ids = [i for i in (as_id(t) for t in given) if i is not None]
    return ids if len(set(ids)) == len(ids) else None


async def _with_rest(
    ctx: ApiV2Context,
    fields: Fields,
    given: list[str],
    done: dict[int, Any],
    full: Callable[[actions.Call, list[str]], Awaitable[list[dict[str, Any]]]],
) -> list[dict[str, Any]]:
    """Merge the ids the statement settled (`done`: id -> answer) with the full path's
    answers for the others, in the order given."""
    rest = [t for t in given if as_id(t) not in done]
    answers = iter(await actions.run(ctx, fields, lambda call: full(call, rest)) if rest else [])
    out: list[dict[str, Any]] = []
    for text_id in given:
        order_id = as_id(text_id)
        out.append(next(answers) if order_id not in done else done[order_id])
    return out


async def cancel(ctx: ApiV2Context, fields: Fields, _: str | None) -> Response | None:
    try:
        given = cancel_given(fields, ctx.settings.max_ids_per_request)
    except DomainError:
        return None
    ids = _settled(given)
    if ids is None:
        return None
    withdrawn = await ctx.hot.withdraw(_key(fields), ids) if ids else None
    if withdrawn is None:
        return None
    done: dict[int, Any] = {i: {"order": i, "cancel": 1} for i in withdrawn}
    return _json(await _with_rest(ctx, fields, given, done, cancel_each))


async def _request_refills(ctx: ApiV2Context, key: str, ids: list[int]) -> dict[int, int] | None:
    """order id -> new refill id for the orders the statement could refill (relays queued),
    or None: the key is refused."""
    if not usable(key):
        return None
    pool = await ctx.db.driver()
    rows = await pool.fetch(REQUEST_REFILLS, hash_key(key), ids)
    if not rows:
        return None
    made: dict[int, int] = {}
    for row in rows:
        if row["refill_id"] is None:
            continue
        made[row["order_id"]] = row["refill_id"]
        if row["upstream_state"] == UP_QUEUED:
            await ctx.jobs.relay_refill(row["refill_id"])
    return made


async def refill(ctx: ApiV2Context, fields: Fields, _: str | None) -> Response | None:
    if "orders" not in fields:
        order_id = as_id(fields.get("order", "").strip())
        if order_id is None:
            return None
        made = await _request_refills(ctx, _key(fields), [order_id])
        if made is None or order_id not in made:
            return None  # refused: the full path finds out why and says it
        return _json({"refill": str(made[order_id])})
    given = _given(fields, "orders", ctx)
    ids = _settled(given) if given is not None else None
    if given is None or not ids:
        return None
    made = await _request_refills(ctx, _key(fields), ids)
    if made is None:
        return None
    done: dict[int, Any] = {i: {"order": i, "refill": r} for i, r in made.items()}
    return _json(await _with_rest(ctx, fields, given, done, refill_each))


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/") for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


async def _render_catalog(ctx: ApiV2Context, user_id: int) -> tuple[Pricing, Rendered]:
    """The user's `services` as the full path renders it, with the pricing it is valid for,
    read in one snapshot (so a change committed meanwhile gets a newer version)."""
    async with ctx.db.session() as session:
        await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        version = int(await session.scalar(text(CATALOG_VERSION)) or 0)
        pricing = (await session.execute(text(USER_PRICING), {"user_id": user_id})).one()
        offered = await catalog.list_offered(session, user_id)
        body = bytes(JSONResponse([service_row(o) for o in offered]).body)
        await session.rollback()
    key = (version, pricing[0], user_id if pricing[1] else None)
    return key, (_etag(body), body)


async def _pricing(ctx: ApiV2Context, digest: str) -> tuple[Pricing, int] | None:
    """The rendering a key's user is shown and the user, or None for a key the full path
    must answer. From memory when the pricing feed vouches that nothing changed since it
    was read (no round trip of its own under load), else from one statement."""
    feed = ctx.db.feed(PRICING_CHANNEL)
    epoch = await feed.fence() if feed is not None else None
    known = ctx.hot.priced(digest, epoch)
    if known is not None:
        return known
    pool = await ctx.db.driver()
    row = await pool.fetchrow(CATALOG_PRICING, digest)
    if row is None:
        return None  # never remembered: a key issued later must work at once
    found = (
        (row["version"], row["discount_percent"], row["user_id"] if row["custom"] else None),
        row["user_id"],
    )
    # Kept only if no change was noticed between the fence and the statement (the
    # statement then saw every change the epoch counts).
    if epoch is not None and feed is not None and feed.epoch == epoch:
        ctx.hot.remember_pricing(epoch, digest, found)
    return found


async def services(ctx: ApiV2Context, fields: Fields, if_none_match: str | None) -> Response | None:
    key_text = _key(fields)
    if not usable(key_text):
        return None
    priced = await _pricing(ctx, hash_key(key_text))
    if priced is None:
        return None
    wanted, user_id = priced
    rendered = ctx.hot.catalog(wanted)
    if rendered is None:
        rendered = await ctx.hot.render_once(wanted, lambda: _render_catalog(ctx, user_id))
    etag, body = rendered
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if _matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


LEAN: dict[str, Lean] = {
    "capabilities": capabilities,
    "add": add,
    "status": status,
    "balance": balance_of,
    "services": services,
    "refill": refill,
    "refill_status": refill_status,
    "cancel": cancel,
}
