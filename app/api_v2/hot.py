"""API v2's hot path: the one object that holds what API v2 keeps in memory between calls,
and the way to the single statements it runs (app/orders/hot.py). lean.py asks it; nothing
else reads or writes its caches.

What it keeps, and why none of it can make an answer wrong:

- for `add`: who a key is, what a service is and what a user pays for it. Every fact is
  re-checked by the statement that uses it, so a stale entry costs a fallback to the full
  path, never a wrong charge; a stale copy is forgotten at once.
- for `services`: the rendered answer per (catalog version, discount, the user when the
  user has custom rates), shared by every user priced alike. The version moves in the
  same transaction as any change to the catalog, so a rendering is never served after a
  change commits; renderings of an older version are dropped. Calls that miss together
  wait for one rendering.
- for `services` too: which rendering a key gets (its user, discount and the version),
  valid while the pricing change feed still answers the epoch it was read under
  (app/changefeed.py).

- for `add` too: which users had their acceptance of the legal texts in force recorded
  lately (ordering accepts them; one row per user and version, app/legal). A user's
  acceptance is recorded again (a no-op unless a new version was published) at most every
  ACCEPTANCE_RECHECK_SECONDS, so the single statement stays one round trip per order.

Each cache is bounded: when full it starts over.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

import asyncpg

from app.accounts.service import hash_key
from app.db import Database
from app.errors import DomainError
from app.legal import service as legal
from app.orders import hot
from app.orders.group import AddGroups, Unsettled
from app.orders.hot import CachedService, FastAdd, GroupItem, OneStatus, Undecided
from app.orders.service import request_digest, request_id_of
from app.orders.types import parse_int

MAX_CACHED = 50_000
ACCEPTANCE_RECHECK_SECONDS = 60.0
# Renderings of `services` kept at most (each is one catalog as one user's prices show it).
MAX_CATALOGS = 256
# Keys whose pricing is remembered at most.
MAX_PRICED_KEYS = 50_000

# What a `services` rendering is valid for: (catalog version, discount, the user when the
# user has custom rates); a rendering is (etag, body).
Pricing = tuple[int, Decimal, int | None]
Rendered = tuple[str, bytes]


class HotPath:
    """API v2's caches (see the module's docstring) and its single statements."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.keys: dict[str, int] = {}  # key hash -> user id
        self.services: dict[int, CachedService] = {}
        self.rates: dict[tuple[int, int], Decimal] = {}
        self.catalogs: dict[Pricing, Rendered] = {}
        self.pricing: dict[str, tuple[Pricing, int]] = {}  # key hash -> (pricing, user)
        self.pricing_epoch: int | None = None
        self._rendering: dict[Pricing, asyncio.Future[Rendered]] = {}
        self.accepted: dict[int, float] = {}  # user id -> when its acceptance was recorded
        # One user's adds in flight together are placed by one statement (group commit).
        self.groups = AddGroups()

    # --- add -----------------------------------------------------------------------------

    def forget(self, digest: str, user_id: int, service_id: int) -> None:
        self.keys.pop(digest, None)
        self.services.pop(service_id, None)
        self.rates.pop((user_id, service_id), None)

    async def add(self, fields: Mapping[str, str]) -> FastAdd | None:
        """Place the order in one statement, with the adds of the same user in flight
        (app/orders/group.py), or None: the full path must decide. A refusal the statement
        decides (the duplicate rule, a reused request id, not enough funds) is raised."""
        key = fields.get("key") or ""
        if not usable(key):
            return None
        try:
            request_id = request_id_of(fields)
            service_id = parse_int(fields.get("service"), DomainError())
        except DomainError:
            return None  # the full path refuses it
        digest = hash_key(key)
        pool = await self.db.driver()
        user_id = await self._user(pool, digest)
        if user_id is None:
            return None  # the full path refuses the key
        cached = await self._service(pool, service_id)
        if cached is None:
            return None
        rate = await self._rate(pool, user_id, service_id)
        if rate is None:
            return None
        try:
            order = hot.prepare(cached.service, rate, fields)
        except DomainError:
            # Judged on a copy that may be stale (a bound or type changed since): the full
            # path answers, and the next add reads the service afresh, so a changed rule
            # never keeps an order away from the single statement.
            self.services.pop(service_id, None)
            return None
        if order is None:
            return None
        asked = request_digest(fields) if request_id is not None else None
        item = GroupItem(cached, rate, order, request_id, asked)
        try:
            placed = await self.groups.place(pool, digest, user_id, item)
        except Unsettled as unsettled:
            if unsettled.why is Undecided.STALE:
                self.forget(digest, user_id, service_id)
            return None
        if placed is not None:
            await self.record_acceptance(user_id)
        return placed

    async def record_acceptance(self, user_id: int) -> None:
        """Ordering accepts the legal texts in force: recorded once per user and version,
        asked again at most every ACCEPTANCE_RECHECK_SECONDS per user."""
        now = time.monotonic()
        if now - self.accepted.get(user_id, -ACCEPTANCE_RECHECK_SECONDS) < (
            ACCEPTANCE_RECHECK_SECONDS
        ):
            return
        async with self.db.transaction() as session:
            await legal.accepted_by_order(session, user_id)
        _bounded(self.accepted)[user_id] = now

    async def _user(self, pool: asyncpg.Pool, digest: str) -> int | None:
        user_id = self.keys.get(digest)
        if user_id is None:
            user_id = await hot.user_of(pool, digest)
            if user_id is not None:
                _bounded(self.keys)[digest] = user_id
        return user_id

    async def _service(self, pool: asyncpg.Pool, service_id: int) -> CachedService | None:
        cached = self.services.get(service_id)
        if cached is None:
            cached = await hot.service_of(pool, service_id)
            if cached is not None:
                _bounded(self.services)[service_id] = cached
        return cached

    async def _rate(self, pool: asyncpg.Pool, user_id: int, service_id: int) -> Decimal | None:
        rate = self.rates.get((user_id, service_id))
        if rate is None:
            rate = await hot.rate_of(pool, user_id, service_id)
            if rate is not None:
                _bounded(self.rates)[(user_id, service_id)] = rate
        return rate

    # --- status, balance, cancel ---------------------------------------------------------

    async def statuses(self, key: str, wanted: Mapping[str, int | None]) -> str | None:
        if not usable(key) or not wanted:
            return None
        return await hot.statuses(await self.db.driver(), hash_key(key), wanted)

    async def statuses_by_request(
        self, key: str, given: list[str]
    ) -> tuple[str, str | None] | None:
        if not usable(key) or not given:
            return None
        return await hot.statuses_by_request(await self.db.driver(), hash_key(key), given)

    async def status(self, key: str, order_id: int | None) -> OneStatus | None:
        if not usable(key):
            return None
        return await hot.status(await self.db.driver(), hash_key(key), order_id)

    async def balance(self, key: str) -> tuple[Decimal, str] | None:
        if not usable(key):
            return None
        return await hot.balance(await self.db.driver(), hash_key(key))

    async def withdraw(self, key: str, order_ids: list[int]) -> set[int] | None:
        if not usable(key):
            return None
        return await hot.withdraw(await self.db.driver(), hash_key(key), order_ids)

    # --- services ------------------------------------------------------------------------

    def catalog(self, wanted: Pricing) -> Rendered | None:
        return self.catalogs.get(wanted)

    async def render_once(
        self, wanted: Pricing, render: Callable[[], Awaitable[tuple[Pricing, Rendered]]]
    ) -> Rendered:
        """The rendering for `wanted`, made by `render` (which answers it with the pricing
        it is valid for, read in its own snapshot) once for all the calls that miss
        together, and kept."""
        pending = self._rendering.get(wanted)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Rendered] = asyncio.get_running_loop().create_future()
        self._rendering[wanted] = future
        try:
            fresh, rendered = await render()
            if len(self.catalogs) >= MAX_CATALOGS or any(k[0] != fresh[0] for k in self.catalogs):
                self.catalogs.clear()  # renderings of an older version are never served again
            self.catalogs[fresh] = rendered
            future.set_result(rendered)
            return rendered
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._rendering[wanted]

    def priced(self, digest: str, epoch: int | None) -> tuple[Pricing, int] | None:
        """The pricing remembered for a key, if the feed still answers the epoch it was
        read under."""
        if epoch is None or epoch != self.pricing_epoch:
            return None
        return self.pricing.get(digest)

    def remember_pricing(self, epoch: int, digest: str, found: tuple[Pricing, int]) -> None:
        """Keep a key's pricing read under `epoch` (a newer epoch starts over)."""
        if self.pricing_epoch != epoch or len(self.pricing) >= MAX_PRICED_KEYS:
            self.pricing.clear()
            self.pricing_epoch = epoch
        self.pricing[digest] = found


def usable(key: str) -> bool:
    """Keys the full path may accept (it refuses the others with its own message)."""
    return bool(key) and len(key) <= 200


def _bounded(cache: dict[Any, Any]) -> dict[Any, Any]:
    if len(cache) >= MAX_CACHED:
        cache.clear()
    return cache
