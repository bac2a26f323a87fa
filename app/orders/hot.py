"""The hot paths of the public API in one round trip each: `add` and `status`.

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
from app.errors import DomainError, DuplicateActiveOrder, IncorrectOrderId
from app.orders.models import UP_DRIPFEED, UP_QUEUED
from app.orders.service import upstream_state_for
from app.orders.types import handler_for, parse_int

MAX_CACHED = 50_000

# The rate a user pays is computed as in the catalog (app/catalog/service.py): a custom
# rate wins, else the service's rate less the user's discount, rounded to 8 places.

WHO = """
SELECT u.id FROM api_keys k JOIN users u ON u.id = k.user_id
WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.status = 'active'
"""

LOAD_SERVICE = "SELECT s.*, s.xmin::text AS row_version FROM services s WHERE s.id = $1"

LOAD_RATE = """
SELECT coalesce(r.rate, round(s.rate * (100 - coalesce(u.discount_percent, 0)) / 100, 8))
FROM services s
JOIN users u ON u.id = $1
LEFT JOIN user_rates r ON r.user_id = u.id AND r.service_id = s.id
WHERE s.id = $2
"""

ADD_ORDER = """
WITH ok AS (
  SELECT 1
  FROM api_keys k
  JOIN users u ON u.id = k.user_id
  JOIN services s ON s.id = $3
  JOIN categories c ON c.id = s.category_id
  LEFT JOIN user_rates r ON r.user_id = u.id AND r.service_id = s.id
  WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.id = $2 AND u.status = 'active'
    AND s.xmin::text = $4 AND s.enabled AND s.deleted_at IS NULL AND c.enabled
    AND coalesce(r.rate, round(s.rate * (100 - coalesce(u.discount_percent, 0)) / 100, 8))
      = $5::numeric
),
debit AS (
  UPDATE users SET balance = balance - $6::numeric
  WHERE id = $2 AND status = 'active' AND balance - $6::numeric >= -credit_limit
    AND EXISTS (SELECT 1 FROM ok)
  RETURNING balance
),
placed AS (
  INSERT INTO orders (
    user_id, service_id, type, link, link_normalized, quantity, runs, interval_minutes,
    params, rate, charge, refunded, status, upstream_state, provider_id,
    provider_service_id, next_attempt_at, created_at, updated_at
  )
  SELECT $2, $3, $7, $8, $9, $10, $11, $12, $13::jsonb, $5::numeric, $6::numeric, 0,
    'Pending', $14::text, $15, $16,
    CASE WHEN $14::text = 'queued' THEN now() END, now(), now()
  FROM debit
  RETURNING id
),
entry AS (
  INSERT INTO ledger_entries (user_id, kind, amount, balance_after, reason, order_id)
  SELECT $2, 'charge', -$6::numeric, debit.balance, 'Order ' || placed.id, placed.id
  FROM debit, placed
)
SELECT EXISTS (SELECT 1 FROM ok) AS fresh, (SELECT id FROM placed) AS order_id
"""

# Multi-status rendered by PostgreSQL as compact JSON text in the order asked, exactly as
# app/api_v2/render.py `order_status` renders a plain order (not a subscription, not a
# drip-feed): the charge at the rate's precision, `precision_for_rate` in app/money.py
# (5 to 8 places: the places of rate / 1000, i.e. of the rate plus 3, which can only be
# off below 5) and never fewer than the charge's own (`format_money`). Orders of other
# shapes make `plain` false and the caller answers instead. Statuses come from a checked
# set; every other text is escaped by to_json.
STATUS_JSON = """
WITH who AS (
  SELECT u.id, to_json(u.currency)::text AS currency
  FROM api_keys k JOIN users u ON u.id = k.user_id
  WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.status = 'active'
),
asked AS (
  -- One primary-key probe per id whatever the statistics say (LIMIT keeps the lateral
  -- from being flattened into a join); another user's order or a run is not found.
  SELECT a.t, a.n, o.*,
    o.id IS NOT NULL AND o.user_id = (SELECT id FROM who) AND o.parent_id IS NULL AS own
  FROM unnest(string_to_array($2, ','), string_to_array($3, ',')) WITH ORDINALITY
    AS a(t, i, n)
  LEFT JOIN LATERAL (
    SELECT * FROM orders WHERE orders.id = nullif(a.i, '')::bigint LIMIT 1
  ) o ON true
)
SELECT
  (SELECT currency FROM who) AS currency,
  coalesce(bool_and(NOT own OR (type <> 'Subscriptions' AND runs IS NULL)), true) AS plain,
  '{' || string_agg(to_json(t)::text || ':' || CASE WHEN NOT own THEN $4::text ELSE
    '{"charge":"' || round(charge, greatest(
        least(8, greatest(5, scale(trim_scale(rate)) + 3)),
        least(8, scale(trim_scale(charge)))))
    || '","start_count":"' || coalesce(start_count, 0)
    || '","status":"' || status
    || '","remains":"' || coalesce(remains, quantity)
    || '","currency":' || (SELECT currency FROM who) || '}'
  END, ',' ORDER BY n) || '}' AS body
FROM asked
"""

NOT_FOUND = json.dumps({"error": IncorrectOrderId.message}, separators=(",", ":"))

SERVICE_COLUMNS = frozenset(Service.__table__.columns.keys())


@dataclass(frozen=True)
class CachedService:
    service: Service  # a detached copy, read only
    version: str  # the row's xmin when it was read


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

    def forget(self, digest: str, user_id: int, service_id: int) -> None:
        self.keys.pop(digest, None)
        self.services.pop(service_id, None)
        self.rates.pop((user_id, service_id), None)

    async def add(self, fields: Mapping[str, str]) -> FastAdd | None:
        """Place the order in one statement, or None: the full path must decide."""
        key = fields.get("key") or ""
        if not key or len(key) > 200:
            return None
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
            request = handler.parse(service, fields)
            charge = handler.charge(rate, request)
        except DomainError:
            return None
        upstream_state = upstream_state_for(service, request)
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
                request.link,
                request.link_normalized,
                request.quantity,
                request.runs,
                request.interval_minutes,
                request.params,
                upstream_state,
                service.provider_id,
                service.provider_service_id,
            )
        except asyncpg.UniqueViolationError as exc:
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
        if not key or len(key) > 200 or not wanted:
            return None
        pool = await self.db.driver()
        row = await pool.fetchrow(
            STATUS_JSON,
            hash_key(key),
            ",".join(wanted),
            ",".join("" if i is None else str(i) for i in wanted.values()),
            NOT_FOUND,
        )
        if row is None or row["currency"] is None or not row["plain"]:
            return None
        body: str = row["body"]
        return body


def _bounded(cache: dict[Any, Any]) -> dict[Any, Any]:
    if len(cache) >= MAX_CACHED:
        cache.clear()
    return cache
