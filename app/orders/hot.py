"""The hot paths of the public API in one round trip each: `add`, `status`, `balance` and
the cancel of orders not yet sent. The statements live in app/orders/sql.py.

`add` is validated in Python against a cached copy of the service and the user's rate,
then placed by one statement that re-checks, inside the database and atomically, everything
the cache could have gotten wrong: the key is still valid and the user active, the service
row is unchanged (its `xmin`), still offered, and the user's rate is still the one used. It
then debits the balance under the credit floor, inserts the order and its ledger entry.
The partial unique index on active orders refuses a duplicate, which aborts the whole
statement (the debit with it): that refusal is final, as in the full path.

Whenever the fast path cannot answer with certainty (a cold or stale cache, any other
refusal) it returns None and the caller runs the full transactional path, which is the
authority on every rule and every error message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import asyncpg

from app.accounts.service import hash_key
from app.catalog.models import Service
from app.db import Database
from app.errors import DomainError, DuplicateActiveOrder, IncorrectOrderId, RequestIdReused
from app.orders.models import UP_DRIPFEED, UP_QUEUED
from app.orders.service import request_digest, request_id_of, upstream_state_for
from app.orders.sql import (
    ADD_ORDER,
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
from app.orders.types import handler_for, parse_int

MAX_CACHED = 50_000

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


class HotPath:
    """Caches of who a key is, what a service is and what a user pays for it. Every cached
    fact is re-checked by the statement that uses it, so a stale entry costs a fallback to
    the full path, never a wrong charge."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.keys: dict[str, int] = {}  # key hash -> user id
        self.services: dict[int, CachedService] = {}
        self.rates: dict[tuple[int, int], Decimal] = {}
        # `services` as rendered bytes per (catalog version, discount, user when the user
        # has custom rates): (etag, body). Filled and read by app/api_v2/lean.py.
        self.catalogs: dict[tuple[int, Decimal, int | None], tuple[str, bytes]] = {}
        # What a key's user sees in `services` (the rendering's key and the user), valid
        # while the pricing change feed answers `pricing_epoch` (app/changefeed.py).
        self.pricing: dict[str, tuple[tuple[int, Decimal, int | None], int]] = {}
        self.pricing_epoch: int | None = None

    def forget(self, digest: str, user_id: int, service_id: int) -> None:
        self.keys.pop(digest, None)
        self.services.pop(service_id, None)
        self.rates.pop((user_id, service_id), None)

    async def add(self, fields: Mapping[str, str]) -> FastAdd | None:
        """Place the order in one statement, or None: the full path must decide."""
        key = fields.get("key") or ""
        if not _usable(key):
            return None
        try:
            request_id = request_id_of(fields)
        except DomainError:
            return None  # the full path refuses it
        asked = request_digest(fields) if request_id is not None else None
        digest = hash_key(key)
        pool = await self.db.driver()
        user_id = self.keys.get(digest)
        if user_id is None:
            user_id = await pool.fetchval(WHO, digest)
            if user_id is None:
                return None  # the full path refuses the key
            _bounded(self.keys)[digest] = user_id
        try:
            service_id = parse_int(fields.get("service"), DomainError())
        except DomainError:
            return None
        cached = self.services.get(service_id)
        if cached is None:
            row = await pool.fetchrow(LOAD_SERVICE, service_id)
            if row is None:
                return None
            values = {k: v for k, v in row.items() if k in SERVICE_COLUMNS}
            cached = CachedService(Service(**values), row["row_version"])
            _bounded(self.services)[service_id] = cached
        rate = self.rates.get((user_id, service_id))
        if rate is None:
            rate = await pool.fetchval(LOAD_RATE, user_id, service_id)
            if rate is None:
                return None
            _bounded(self.rates)[(user_id, service_id)] = rate
        service = cached.service
        try:
            handler = handler_for(service.type)
            parsed = handler.parse(service, fields)
            charge = handler.charge(rate, parsed)
        except DomainError:
            # Judged on a copy that may be stale (a bound or type changed since): the full
            # path answers, and the next add reads the service afresh, so a changed rule
            # never keeps an order away from the single statement.
            self.services.pop(service_id, None)
            return None
        upstream_state = upstream_state_for(service, parsed)
        if charge <= 0 or upstream_state == UP_DRIPFEED:
            return None  # free orders and drip-feed runs kept by the panel: the full path
        try:
            row = await pool.fetchrow(
                ADD_ORDER,
                digest,
                user_id,
                service_id,
                cached.version,
                rate,
                charge,
                service.type,
                parsed.link,
                parsed.link_normalized,
                parsed.quantity,
                parsed.runs,
                parsed.interval_minutes,
                parsed.params,
                upstream_state,
                service.provider_id,
                service.provider_service_id,
                request_id,
                asked,
            )
        except asyncpg.UniqueViolationError as exc:
            if request_id is not None:
                # Waited for the request that holds the id (or the link): its order, if
                # it is one of this request's, is the answer, charged once.
                earlier = await pool.fetchrow(REQUEST_ORDER, user_id, request_id)
                if earlier is not None:
                    if earlier["request_digest"] != asked:
                        raise RequestIdReused() from exc
                    return FastAdd(earlier["id"], False)
            if exc.constraint_name == "uq_orders_active_link":
                # Only a fresh, funded request reaches the insert: the database has decided.
                raise DuplicateActiveOrder() from exc
            raise
        assert row is not None
        if not row["fresh"]:
            self.forget(digest, user_id, service_id)
            return None
        if row["order_id"] is None:
            return None  # not enough funds, or the user was just blocked
        return FastAdd(row["order_id"], upstream_state == UP_QUEUED)

    async def statuses(self, key: str, wanted: Mapping[str, int | None]) -> str | None:
        """The multi-status answer as JSON text for the ids as given (`wanted`: id text ->
        id, or None where the text is no id), or None: the full path answers instead (an
        invalid key, or an order of a shape rendered in Python)."""
        if not _usable(key) or not wanted:
            return None
        pool = await self.db.driver()
        row = await pool.fetchrow(
            STATUS_JSON, hash_key(key), list(wanted), list(wanted.values()), NOT_FOUND
        )
        if row is None or row["currency"] is None or not row["plain"]:
            return None
        body: str = row["body"]
        return body

    async def statuses_by_request(
        self, key: str, given: list[str]
    ) -> tuple[str, str | None] | None:
        """Status by request ids (distinct, in the order asked) as the multi answer's JSON
        text, with the first id's status object alone (None when it names none of the
        caller's orders); or None: the full path answers (an invalid key, or an order of a
        shape rendered in Python)."""
        if not _usable(key) or not given:
            return None
        pool = await self.db.driver()
        row = await pool.fetchrow(STATUS_BY_REQUEST, hash_key(key), given, NOT_FOUND)
        if row is None or row["currency"] is None or not row["plain"]:
            return None
        return row["body"], row["first"]

    async def status(self, key: str, order_id: int | None) -> OneStatus | None:
        """A single status: the order's JSON text, or `found` False (not the caller's, or
        no id at all), or None: the full path answers (an invalid key, or an order of a
        shape rendered in Python)."""
        if not _usable(key):
            return None
        pool = await self.db.driver()
        row = await pool.fetchrow(STATUS_ONE, hash_key(key), order_id)
        if row is None or not row["plain"]:
            return None
        return OneStatus(row["found"], row["body"])

    async def balance(self, key: str) -> tuple[Decimal, str] | None:
        """(balance, currency) of the key's user, or None: the full path refuses the key."""
        if not _usable(key):
            return None
        pool = await self.db.driver()
        row = await pool.fetchrow(BALANCE, hash_key(key))
        return None if row is None else (row["balance"], row["currency"])

    async def withdraw(self, key: str, order_ids: list[int]) -> set[int] | None:
        """Cancel and refund, in one statement, those of `order_ids` (distinct) that were
        never sent; the ids withdrawn, or None: the full path refuses the key. Every other
        id is untouched (the full path answers it)."""
        if not _usable(key):
            return None
        assert len(set(order_ids)) == len(order_ids), "one ledger entry per order"
        pool = await self.db.driver()
        row = await pool.fetchrow(WITHDRAW, hash_key(key), order_ids)
        if row is None or row["user_id"] is None:
            return None
        return set(row["withdrawn"])


def _usable(key: str) -> bool:
    """Keys the full path may accept (it refuses the others with its own message)."""
    return bool(key) and len(key) <= 200


def _bounded(cache: dict[Any, Any]) -> dict[Any, Any]:
    if len(cache) >= MAX_CACHED:
        cache.clear()
    return cache
