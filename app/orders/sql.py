"""SQL statements of the orders domain that restate a Python rule, each beside its twin
and tested as one (tests/test_sql_twins_api.py for the API v2 section). State names and
constants come from the Python definitions; no state is spelled inside SQL."""

from __future__ import annotations

from app.accounts.models import USER_ACTIVE
from app.accounts.sql import WHO_FROM, lit, lits
from app.catalog.sql import effective_rate_sql
from app.orders.models import (
    CANCELED,
    PENDING,
    UP_MANUAL,
    UP_QUEUED,
    UP_WITHDRAWN,
)
from app.orders.types import SubscriptionsType

# ======================================================================================
# API v2 hot path (app/orders/hot.py): one statement per call on the plain asyncpg pool.
# ======================================================================================

WHO = f"SELECT u.id FROM {WHO_FROM}"

BALANCE = f"SELECT u.balance, u.currency FROM {WHO_FROM}"

LOAD_SERVICE = "SELECT s.*, s.xmin::text AS row_version FROM services s WHERE s.id = $1"

# Twin of `app.catalog.sql.effective_rate` (through `effective_rate_sql`).
LOAD_RATE = f"""
SELECT {effective_rate_sql("s.rate", "u.discount_percent", "r.rate")}
FROM services s
JOIN users u ON u.id = $1
LEFT JOIN user_rates r ON r.user_id = u.id AND r.service_id = s.id
WHERE s.id = $2
"""

# Twin of `app.orders.service.place_order` for what the cache cannot vouch for: the key is
# still valid and the user active, the service row unchanged (its `xmin`), still offered,
# and the user's rate still the one used. It then debits the balance under the credit
# floor, inserts the order and its ledger entry.
ADD_ORDER = f"""
WITH ok AS (
  SELECT 1
  FROM api_keys k
  JOIN users u ON u.id = k.user_id
  JOIN services s ON s.id = $3
  JOIN categories c ON c.id = s.category_id
  LEFT JOIN user_rates r ON r.user_id = u.id AND r.service_id = s.id
  WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.id = $2
    AND u.status = {lit(USER_ACTIVE)}
    AND s.xmin::text = $4 AND s.enabled AND s.deleted_at IS NULL AND c.enabled
    AND {effective_rate_sql("s.rate", "u.discount_percent", "r.rate")} = $5::numeric
),
debit AS (
  UPDATE users SET balance = balance - $6::numeric
  WHERE id = $2 AND status = {lit(USER_ACTIVE)} AND balance - $6::numeric >= -credit_limit
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
    {lit(PENDING)}, $14::text, $15, $16,
    CASE WHEN $14::text = {lit(UP_QUEUED)} THEN now() END, now(), now()
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

SUBSCRIPTIONS = SubscriptionsType.name

# Orders `status` renders in SQL: not a subscription, not a drip-feed (other shapes are
# rendered in Python by app/api_v2/render.py `order_status`).
PLAIN = f"(type <> {lit(SUBSCRIPTIONS)} AND runs IS NULL)"


def status_object(currency_json: str) -> str:
    """Twin of `app.api_v2.render.order_status` for a plain order, as compact JSON text:
    the charge at the rate's precision, `precision_for_rate` in app/money.py (5 to 8
    places: the places of rate / 1000, i.e. of the rate plus 3) and never fewer than the
    charge's own (`format_money`). Statuses come from a checked set; the currency is
    JSON text already (`to_json`)."""
    return f"""'{{"charge":"' || round(charge, greatest(
        least(8, greatest(5, scale(trim_scale(rate)) + 3)),
        least(8, scale(trim_scale(charge)))))
    || '","start_count":"' || coalesce(start_count, 0)
    || '","status":"' || status
    || '","remains":"' || coalesce(remains, quantity)
    || '","currency":' || {currency_json} || '}}'"""


# Multi-status as compact JSON text in the order asked. `plain` false: some order needs
# the Python renderer and the caller answers instead.
STATUS_JSON = f"""
WITH who AS (
  SELECT u.id, to_json(u.currency)::text AS currency FROM {WHO_FROM}
),
asked AS (
  -- One primary-key probe per id whatever the statistics say (LIMIT keeps the lateral
  -- from being flattened into a join); another user's order or a run is not found.
  SELECT a.t, a.n, o.*,
    o.id IS NOT NULL AND o.user_id = (SELECT id FROM who) AND o.parent_id IS NULL AS own
  FROM unnest($2::text[], $3::bigint[]) WITH ORDINALITY AS a(t, i, n)
  LEFT JOIN LATERAL (SELECT * FROM orders WHERE orders.id = a.i LIMIT 1) o ON true
)
SELECT
  (SELECT currency FROM who) AS currency,
  coalesce(bool_and(NOT own OR {PLAIN}), true) AS plain,
  '{{' || string_agg(to_json(t)::text || ':' || CASE WHEN NOT own THEN $4::text ELSE
    {status_object("(SELECT currency FROM who)")}
  END, ',' ORDER BY n) || '}}' AS body
FROM asked
"""

# Single status: the order's JSON object (NULL when it is not the caller's).
STATUS_ONE = f"""
WITH who AS (
  SELECT u.id, to_json(u.currency)::text AS currency FROM {WHO_FROM}
)
SELECT w.currency, o.id IS NOT NULL AS found, coalesce({PLAIN}, true) AS plain,
  {status_object("w.currency")} AS body
FROM who w
LEFT JOIN LATERAL (
  SELECT * FROM orders WHERE id = $2 AND user_id = w.id AND parent_id IS NULL
) o ON true
"""

# Twin of `app.orders.service.stop_order` on the orders that were never sent (with
# `cancel_order`'s checks and `refund`'s ledger entry): each of the caller's orders among
# `$2` (distinct ids, in the order asked) that is Pending, queued or manual, on a service
# that allows cancel, is canceled and refunded in full, one ledger entry each, the
# balance moving once. Every other id is left untouched for the full path to answer.
WITHDRAW = f"""
WITH who AS (SELECT u.id FROM {WHO_FROM}),
gone AS (
  UPDATE orders o SET status = {lit(CANCELED)}, upstream_state = {lit(UP_WITHDRAWN)},
    finished_at = now(), remains = o.quantity, refunded = o.refunded + o.charge,
    updated_at = now()
  FROM services s
  WHERE o.id = ANY($2::bigint[]) AND o.user_id = (SELECT id FROM who)
    AND o.parent_id IS NULL AND s.id = o.service_id AND s.cancel
    AND o.status = {lit(PENDING)} AND o.upstream_state IN ({lits((UP_QUEUED, UP_MANUAL))})
  RETURNING o.id, o.charge
),
credited AS (
  UPDATE users SET balance = balance + (SELECT sum(charge) FROM gone)
  WHERE id = (SELECT id FROM who) AND EXISTS (SELECT 1 FROM gone WHERE charge > 0)
  RETURNING balance
),
entries AS (
  INSERT INTO ledger_entries (user_id, kind, amount, balance_after, reason, order_id)
  SELECT (SELECT id FROM who), 'refund', g.charge,
    c.balance - (SELECT sum(charge) FROM gone) + sum(g.charge) OVER (ORDER BY a.n),
    'Order ' || g.id || ': Canceled before sending', g.id
  FROM gone g
  JOIN unnest($2::bigint[]) WITH ORDINALITY AS a(id, n) ON a.id = g.id
  CROSS JOIN credited c
  WHERE g.charge > 0
)
SELECT (SELECT id FROM who) AS user_id, array(SELECT id FROM gone) AS withdrawn
"""
