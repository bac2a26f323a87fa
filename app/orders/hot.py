"""The orders domain's single statements for API v2's hot path: `add`, `status`, `balance`
and the cancel of orders not yet sent, each one round trip on the plain asyncpg pool. The
statements live in app/orders/sql.py; what the hot path keeps in memory between calls (who
a key is, what a service is, what a user pays) is API v2's (app/api_v2/hot.py), and
nothing here remembers anything.

`add` is validated in Python against a copy of the service and the user's rate that may be
stale, then placed by one statement that re-checks, inside the database and atomically,
everything such a copy could have gotten wrong: the key is still valid and the user
active, the service row is unchanged (its `xmin`), still offered, and the user's rate is
still the one used. It then debits the balance under the credit floor, inserts the order
and its ledger entry. The partial unique index on active orders refuses a duplicate, which
aborts the whole statement (the debit with it): that refusal is final, as in the full
path.

Whenever a statement cannot answer with certainty (a stale copy, any other refusal) the
function says so (None, or `fresh` False) and the caller runs the full transactional
path, which is the authority on every rule and every error message.

Several adds of one user arriving together are placed by ADD_ORDERS (`add_orders`), the
group twin of ADD_ORDER: the same checks per add, in arrival order against the balance the
earlier ones leave, the sum debited once (app/orders/group.py gathers them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol

import asyncpg

from app.catalog.models import Service
from app.errors import (
    DomainError,
    DuplicateActiveOrder,
    IncorrectOrderId,
    NotEnoughFunds,
    RequestIdReused,
)
from app.orders.models import UP_DRIPFEED, UP_QUEUED
from app.orders.service import upstream_state_for
from app.orders.sql import (
    ADD_ORDER,
    ADD_ORDERS,
    BALANCE,
    LOAD_RATE,
    LOAD_SERVICE,
    REQUEST_ORDER,
    STATUS_BY_REQUEST,
    STATUS_JSON,
    STATUS_ONE,
    WHO,
    WITHDRAW,
)
from app.orders.types import OrderRequest, handler_for

NOT_FOUND = json.dumps({"error": IncorrectOrderId.message}, separators=(",", ":"))

SERVICE_COLUMNS = frozenset(Service.__table__.columns.keys())


@dataclass(frozen=True)
class CachedService:
    service: Service  # a detached copy, read only
    version: str  # the row's xmin when it was read


@dataclass(frozen=True)
class OneStatus:
    found: bool
    body: str | None  # the status object as JSON text when found


@dataclass(frozen=True)
class FastAdd:
    order_id: int
    queued: bool  # due for relay now


@dataclass(frozen=True)
class Prepared:
    """An `add` judged on a copy of its service: what the statement places."""

    request: OrderRequest
    charge: Decimal
    upstream_state: str


@dataclass(frozen=True)
class Added:
    """What ADD_ORDER did: `fresh` False when a copy it was judged on is stale; `placed`
    None when it refused (not enough funds, the user just blocked)."""

    fresh: bool
    placed: FastAdd | None


@dataclass(frozen=True)
class GroupItem:
    """One add of a group (ADD_ORDERS): judged on a copy of its service and rate."""

    cached: CachedService
    rate: Decimal
    order: Prepared
    request_id: str | None
    asked: str | None  # the digest of the request's parameters (with a request id)

    @property
    def target(self) -> tuple[int, str]:
        """What the duplicate rule compares: the service and the normalised link."""
        return self.cached.service.id, self.order.request.link_normalized


class Undecided(Enum):
    """An add a statement did not settle: STALE, a copy it was judged on is stale (the
    full path decides); REFUSED, refused for a reason the full path words (ADD_ORDER's
    debit refused); AGAIN, it repeats an earlier item's target or request id, or a
    concurrent add took what it needed (placed by the next statement)."""

    STALE = "stale"
    REFUSED = "refused"
    AGAIN = "again"


Outcome = FastAdd | DomainError | Undecided


class Fetcher(Protocol):
    """Where a statement runs: an asyncpg pool or connection (or the caller's transaction
    behind the same method)."""

    async def fetch(self, query: str, *args: Any) -> list[Any]: ...


async def add_orders(
    db: Fetcher, digest: str | None, user_id: int, items: Sequence[GroupItem]
) -> list[Outcome]:
    """Place the adds of one user in one statement (ADD_ORDERS), in the order given: each
    item's order, its refusal (a domain error: the same the full path gives), or why it is
    not settled. `digest` None: the caller has authenticated the user."""
    rows = await db.fetch(ADD_ORDERS, digest, user_id, *_columns(items))
    outcomes: list[Outcome] = []
    conflicted = False
    for item, row in zip(items, rows, strict=True):
        if row["taken"] and row["order_id"] is None:
            conflicted = True  # a concurrent add committed this item's target or id
            outcomes.append(await _conflicted(db, user_id, item))
            continue
        outcome = _outcome(item, row)
        if conflicted and isinstance(outcome, NotEnoughFunds):
            # The money the skipped insert held back was not spent: placed again.
            outcome = Undecided.AGAIN
        outcomes.append(outcome)
    return outcomes


def _columns(items: Sequence[GroupItem]) -> list[list[Any]]:
    def column(of: Any) -> list[Any]:
        return [of(item) for item in items]

    return [
        column(lambda i: i.cached.service.id),
        column(lambda i: i.cached.version),
        column(lambda i: i.rate),
        column(lambda i: i.order.charge),
        column(lambda i: i.cached.service.type),
        column(lambda i: i.order.request.link),
        column(lambda i: i.order.request.link_normalized),
        column(lambda i: i.order.request.quantity),
        column(lambda i: i.order.request.runs),
        column(lambda i: i.order.request.interval_minutes),
        column(lambda i: json.dumps(i.order.request.params)),
        column(lambda i: i.order.upstream_state),
        column(lambda i: i.cached.service.provider_id),
        column(lambda i: i.cached.service.provider_service_id),
        column(lambda i: i.request_id),
        column(lambda i: i.asked),
    ]


def _outcome(item: GroupItem, row: Mapping[str, Any]) -> Outcome:
    """One item's outcome, in the order the full path checks: its request id, its service
    (a stale copy), the duplicate rule, the balance. An unknown key or a user no longer
    active: the full path refuses them."""
    if not row["known"]:
        return Undecided.STALE
    if row["earlier_id"] is not None:
        if row["earlier_digest"] != item.asked:
            return RequestIdReused()
        return FastAdd(row["earlier_id"], False)
    if not row["fresh"]:
        return Undecided.STALE
    if row["repeat"]:
        return Undecided.AGAIN
    if row["duplicate"]:
        return DuplicateActiveOrder()
    if not row["taken"]:
        return NotEnoughFunds()
    return FastAdd(row["order_id"], item.order.upstream_state == UP_QUEUED)


async def _conflicted(db: Fetcher, user_id: int, item: GroupItem) -> Outcome:
    """An item whose insert a unique index skipped: the order its request id names (a
    retry in flight elsewhere) or the duplicate rule."""
    if item.request_id is not None:
        for earlier in await db.fetch(REQUEST_ORDER, user_id, item.request_id):
            if earlier["request_digest"] != item.asked:
                return RequestIdReused()
            return FastAdd(earlier["id"], False)
    return DuplicateActiveOrder()


async def user_of(pool: asyncpg.Pool, digest: str) -> int | None:
    """The user of a valid key (by its hash), or None: the full path refuses the key."""
    found: int | None = await pool.fetchval(WHO, digest)
    return found


async def service_of(pool: asyncpg.Pool, service_id: int) -> CachedService | None:
    row = await pool.fetchrow(LOAD_SERVICE, service_id)
    if row is None:
        return None
    values = {k: v for k, v in row.items() if k in SERVICE_COLUMNS}
    return CachedService(Service(**values), row["row_version"])


async def rate_of(pool: asyncpg.Pool, user_id: int, service_id: int) -> Decimal | None:
    rate: Decimal | None = await pool.fetchval(LOAD_RATE, user_id, service_id)
    return rate


def prepare(service: Service, rate: Decimal, fields: Mapping[str, str]) -> Prepared | None:
    """The order an `add` asks for, judged on a copy of its service; None for an order the
    full path places (free, or a drip-feed the panel runs itself). A refusal raises as the
    type's rules raise it: judged on a copy that may be stale, it is not final."""
    handler = handler_for(service.type)
    request = handler.parse(service, fields)
    charge = handler.charge(rate, request)
    upstream_state = upstream_state_for(service, request)
    if charge <= 0 or upstream_state == UP_DRIPFEED:
        return None  # free orders and drip-feed runs kept by the panel: the full path
    return Prepared(request, charge, upstream_state)


async def add_order(
    pool: asyncpg.Pool,
    digest: str,
    user_id: int,
    cached: CachedService,
    rate: Decimal,
    order: Prepared,
    request_id: str | None,
    asked: str | None,
) -> Added:
    """Place the order in one statement. A unique index refusing it is final: the order
    the same request id placed is the answer (RequestIdReused when its parameters
    differ), or DuplicateActiveOrder."""
    service, request = cached.service, order.request
    try:
        row = await pool.fetchrow(
            ADD_ORDER,
            digest,
            user_id,
            service.id,
            cached.version,
            rate,
            order.charge,
            service.type,
            request.link,
            request.link_normalized,
            request.quantity,
            request.runs,
            request.interval_minutes,
            request.params,
            order.upstream_state,
            service.provider_id,
            service.provider_service_id,
            request_id,
            asked,
        )
    except asyncpg.UniqueViolationError as exc:
        return Added(True, await _refused(pool, user_id, request_id, asked, exc))
    assert row is not None
    if not row["fresh"] or row["order_id"] is None:
        return Added(bool(row["fresh"]), None)
    return Added(True, FastAdd(row["order_id"], order.upstream_state == UP_QUEUED))


async def _refused(
    pool: asyncpg.Pool,
    user_id: int,
    request_id: str | None,
    asked: str | None,
    exc: asyncpg.UniqueViolationError,
) -> FastAdd:
    if request_id is not None:
        # Waited for the request that holds the id (or the link): its order, if it is
        # one of this request's, is the answer, charged once.
        earlier = await pool.fetchrow(REQUEST_ORDER, user_id, request_id)
        if earlier is not None:
            if earlier["request_digest"] != asked:
                raise RequestIdReused() from exc
            return FastAdd(earlier["id"], False)
    if exc.constraint_name == "uq_orders_active_link":
        # Only a fresh, funded request reaches the insert: the database has decided.
        raise DuplicateActiveOrder() from exc
    raise exc


async def statuses(pool: asyncpg.Pool, digest: str, wanted: Mapping[str, int | None]) -> str | None:
    """The multi-status answer as JSON text for the ids as given (`wanted`: id text -> id,
    or None where the text is no id), or None: the full path answers instead (an invalid
    key, or an order of a shape rendered in Python)."""
    row = await pool.fetchrow(STATUS_JSON, digest, list(wanted), list(wanted.values()), NOT_FOUND)
    if row is None or row["currency"] is None or not row["plain"]:
        return None
    body: str = row["body"]
    return body


async def statuses_by_request(
    pool: asyncpg.Pool, digest: str, given: list[str]
) -> tuple[str, str | None] | None:
    """Status by request ids (distinct, in the order asked) as the multi answer's JSON
    text, with the first id's status object alone (None when it names none of the
    caller's orders); or None: the full path answers (an invalid key, or an order of a
    shape rendered in Python)."""
    row = await pool.fetchrow(STATUS_BY_REQUEST, digest, given, NOT_FOUND)
    if row is None or row["currency"] is None or not row["plain"]:
        return None
    return row["body"], row["first"]


async def status(pool: asyncpg.Pool, digest: str, order_id: int | None) -> OneStatus | None:
    """A single status: the order's JSON text, or `found` False (not the caller's, or no
    id at all), or None: the full path answers (an invalid key, or an order of a shape
    rendered in Python)."""
    row = await pool.fetchrow(STATUS_ONE, digest, order_id)
    if row is None or not row["plain"]:
        return None
    return OneStatus(row["found"], row["body"])


async def balance(pool: asyncpg.Pool, digest: str) -> tuple[Decimal, str] | None:
    """(balance, currency) of the key's user, or None: the full path refuses the key."""
    row = await pool.fetchrow(BALANCE, digest)
    return None if row is None else (row["balance"], row["currency"])


async def withdraw(pool: asyncpg.Pool, digest: str, order_ids: list[int]) -> set[int] | None:
    """Cancel and refund, in one statement, those of `order_ids` (distinct) that were never
    sent; the ids withdrawn, or None: the full path refuses the key. Every other id is
    untouched (the full path answers it)."""
    assert len(set(order_ids)) == len(order_ids), "one ledger entry per order"
    row = await pool.fetchrow(WITHDRAW, digest, order_ids)
    if row is None or row["user_id"] is None:
        return None
    return set(row["withdrawn"])
