"""SQL statements of the orders domain that restate a Python rule, for speed, each beside
its twin and tested as one (tests/test_sql_twins.py for the status sync and the relay,
tests/test_sql_twins_api.py for the API v2 hot path). State names and constants come from
the Python definitions (`app.db.sql_literal`); no state is spelled inside SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import TextClause, text

from app.accounts.models import USER_ACTIVE
from app.accounts.sql import WHO_FROM
from app.catalog.sql import effective_rate_sql
from app.db import sql_list, sql_literal
from app.ledger.models import CHARGE, REFUND
from app.orders.models import (
    ACTIVE_STATUSES,
    CANCELED,
    COMPLETED,
    EVENT_ADD,
    EVENT_STATUS,
    IN_PROGRESS,
    PENDING,
    SOURCE_PROVIDER,
    UP_DRIPFEED,
    UP_MANUAL,
    UP_QUEUED,
    UP_REVIEW,
    UP_SENDING,
    UP_SENT,
    UP_WITHDRAWN,
)
from app.orders.service import StatusReport
from app.orders.types import SubscriptionsType

# ---------------------------------------------------------------------------------------
# Status sync and relay (app/flows/sync.py, app/flows/relay/)
# ---------------------------------------------------------------------------------------

PROGRESS_FROM = ACTIVE_STATUSES  # final orders never move on a report

# The bulk twin of `orders.service.apply_status` for reports that move no money (In
# progress, Processing, Completed): the same values, the same guards (only active orders
# move; a drip-feed parent follows its runs), rows locked in id order (concurrent pages
# cannot deadlock), one upstream event per order that changed. Twin test:
# tests/test_sql_twins.py::test_progress_sql_is_the_twin_of_apply_status.
PROGRESS_SQL: TextClause = text(
    f"""
    WITH v AS (
        SELECT * FROM unnest(
            CAST(:ids AS bigint[]), CAST(:statuses AS text[]),
            CAST(:start_counts AS bigint[]), CAST(:remains AS bigint[])
        ) AS v(id, status, start_count, remains)
    ), locked AS (
        SELECT o.id FROM orders AS o
        WHERE o.id = ANY(CAST(:ids AS bigint[]))
            AND o.status IN ({sql_list(PROGRESS_FROM)})
            AND o.upstream_state <> {sql_literal(UP_DRIPFEED)}
        ORDER BY o.id
        FOR UPDATE
    ), changed AS (
        UPDATE orders AS o SET
            status = v.status,
            start_count = CASE WHEN v.start_count >= 0 THEN v.start_count
                ELSE o.start_count END,
            remains = CASE WHEN v.status = {sql_literal(COMPLETED)} THEN 0
                WHEN v.remains IS NULL THEN o.remains
                ELSE LEAST(GREATEST(v.remains, 0), o.quantity) END,
            finished_at = CASE WHEN v.status = {sql_literal(COMPLETED)} THEN now()
                ELSE o.finished_at END,
            updated_at = now()
        FROM v, locked
        WHERE o.id = v.id AND locked.id = v.id
            AND o.status IN ({sql_list(PROGRESS_FROM)})
            AND o.upstream_state <> {sql_literal(UP_DRIPFEED)}
            AND (v.status <> o.status OR v.status = {sql_literal(COMPLETED)}
                OR v.start_count >= 0 OR v.remains IS NOT NULL)
        RETURNING o.id, o.parent_id, v.status, v.start_count, v.remains
    ), events AS (
        INSERT INTO upstream_events (order_id, action, outcome, detail, created_at)
        SELECT id, {sql_literal(EVENT_STATUS)}, status,
            jsonb_build_object(
                'source', {sql_literal(SOURCE_PROVIDER)}, 'start_count', start_count,
                'remains', remains
            ),
            now()
        FROM changed
    )
    SELECT id, parent_id FROM changed
    """
)


def progress_params(reports: Sequence[tuple[int, StatusReport]]) -> dict[str, list[Any]]:
    """The parameters of PROGRESS_SQL for (order id, StatusReport) pairs."""
    return {
        "ids": [order_id for order_id, _ in reports],
        "statuses": [report.status for _, report in reports],
        "start_counts": [report.start_count for _, report in reports],
        "remains": [report.remains for _, report in reports],
    }


# Subscriptions: how many posts the provider has served, shown by `status`.
POSTS_SQL: TextClause = text(
    f"""
    UPDATE orders AS o SET
        params = o.params || jsonb_build_object('posts_done', v.posts),
        updated_at = now()
    FROM unnest(CAST(:ids AS bigint[]), CAST(:posts AS bigint[])) AS v(id, posts)
    WHERE o.id = v.id AND o.type = {sql_literal(SubscriptionsType.name)}
    """
)


# Upstream states a provider's order id may be recorded from: the relay's own claims
# (`sending`) and, by an operator, orders whose outcome was unknown (`review`). Either way
# only once: an order that has a provider order id keeps it.
SENT_FROM = (UP_SENDING, UP_REVIEW)

# The bulk twin of `flows.review.review_mark_sent` for the relay's accepted orders: the
# same values (sent, In progress, the provider's order id, what it bills for it) under the
# same guards, one upstream event per order. Twin test:
# tests/test_sql_twins.py::test_sent_sql_is_the_twin_of_review_mark_sent.
SENT_SQL: TextClause = text(
    f"""
    WITH v AS (
        SELECT * FROM unnest(
            CAST(:ids AS bigint[]), CAST(:provider_order_ids AS text[]),
            CAST(:priced AS boolean[]), CAST(:charges AS numeric[]),
            CAST(:currencies AS text[]), CAST(:fx_rates AS numeric[])
        ) AS v(id, provider_order_id, priced, provider_charge, provider_currency, fx_rate)
    ), sent AS (
        UPDATE orders AS o SET
            upstream_state = {sql_literal(UP_SENT)},
            provider_order_id = v.provider_order_id,
            status = {sql_literal(IN_PROGRESS)},
            sending_since = NULL,
            last_error = NULL,
            provider_charge = CASE WHEN v.priced THEN v.provider_charge ELSE o.provider_charge END,
            provider_currency =
                CASE WHEN v.priced THEN v.provider_currency ELSE o.provider_currency END,
            fx_rate = CASE WHEN v.priced THEN v.fx_rate ELSE o.fx_rate END,
            updated_at = now()
        FROM v
        WHERE o.id = v.id
            AND o.upstream_state IN ({sql_list(SENT_FROM)})
            AND o.provider_order_id IS NULL
        RETURNING o.id, o.cancel_state
    ), events AS (
        INSERT INTO upstream_events (order_id, action, outcome, detail, created_at)
        SELECT v.id, {sql_literal(EVENT_ADD)}, {sql_literal(UP_SENT)},
            jsonb_build_object('provider_order_id', v.provider_order_id),
            now()
        FROM v
    )
    SELECT id, cancel_state FROM sent
    """
)


class Billed(Protocol):
    """What the provider bills for an order (flows.relay.costs.UpstreamCost)."""

    @property
    def charge(self) -> Decimal: ...
    @property
    def currency(self) -> str: ...
    @property
    def fx_rate(self) -> Decimal | None: ...


def sent_params(
    sent: Sequence[tuple[int, str]], costs: Mapping[int, Billed]
) -> dict[str, list[Any]]:
    """The parameters of SENT_SQL for (order id, provider order id) pairs; orders without
    a cost keep the cost columns they have."""
    return {
        "ids": [order_id for order_id, _ in sent],
        "provider_order_ids": [provider_order_id for _, provider_order_id in sent],
        "priced": [order_id in costs for order_id, _ in sent],
        "charges": [costs[i].charge if i in costs else None for i, _ in sent],
        "currencies": [costs[i].currency if i in costs else None for i, _ in sent],
        "fx_rates": [costs[i].fx_rate if i in costs else None for i, _ in sent],
    }


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
# the user's rate still the one used, and no order of theirs on this link and service
# under review (ToS 2.5). It then debits the balance under the credit floor, inserts
# the order and its ledger entry (the twin of `app.ledger.service.debit`: the same floor,
# the same entry), with the client's request id and the digest of the request's
# parameters ($17, $18: NULL without one). A unique index (active link, or
# the user's request id) refuses the insert and aborts the whole statement, the debit
# with it.
ADD_ORDER = f"""
WITH ok AS (
  SELECT 1
  FROM api_keys k
  JOIN users u ON u.id = k.user_id
  JOIN services s ON s.id = $3
  JOIN categories c ON c.id = s.category_id
  LEFT JOIN user_rates r ON r.user_id = u.id AND r.service_id = s.id
  WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND u.id = $2
    AND u.status = {sql_literal(USER_ACTIVE)}
    AND s.xmin::text = $4 AND s.enabled AND s.deleted_at IS NULL AND c.enabled
    AND {effective_rate_sql("s.rate", "u.discount_percent", "r.rate")} = $5::numeric
    -- `refuse_target_under_review`: no order of the user on this target is under review.
    AND NOT EXISTS (
      SELECT 1 FROM orders v
      WHERE v.user_id = $2 AND v.service_id = $3 AND v.link_normalized = $9
        AND $9 <> '' AND v.review_ticket_id IS NOT NULL
    )
),
debit AS (
  UPDATE users SET balance = balance - $6::numeric
  WHERE id = $2 AND status = {sql_literal(USER_ACTIVE)} AND balance - $6::numeric >= -credit_limit
    AND EXISTS (SELECT 1 FROM ok)
  RETURNING balance
),
placed AS (
  INSERT INTO orders (
    user_id, service_id, type, link, link_normalized, quantity, runs, interval_minutes,
    params, rate, charge, refunded, status, upstream_state, provider_id,
    provider_service_id, next_attempt_at, created_at, updated_at, request_id, request_digest
  )
  SELECT $2, $3, $7, $8, $9, $10, $11, $12, $13::jsonb, $5::numeric, $6::numeric, 0,
    {sql_literal(PENDING)}, $14::text, $15, $16,
    CASE WHEN $14::text = {sql_literal(UP_QUEUED)} THEN now() END, now(), now(),
    $17::text, $18::text
  FROM debit
  RETURNING id
),
entry AS (
  INSERT INTO ledger_entries (user_id, kind, amount, balance_after, reason, order_id)
  SELECT $2, {sql_literal(CHARGE)}, -$6::numeric, debit.balance, 'Order ' || placed.id, placed.id
  FROM debit, placed
)
SELECT EXISTS (SELECT 1 FROM ok) AS fresh, (SELECT id FROM placed) AS order_id
"""

SUBSCRIPTIONS = SubscriptionsType.name

# Orders `status` renders in SQL: not a subscription, not a drip-feed (other shapes are
# rendered in Python by app/api_v2/render.py `order_status`).
PLAIN = f"(type <> {sql_literal(SUBSCRIPTIONS)} AND runs IS NULL)"


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

# Status by request ids (SPEC §4) as compact JSON text in the order asked: twin of
# `order_ids_by_request` then `order_status` with the order's id appended (the full path's
# `_status_by_request_id`). `found` false: some request id names none of the caller's orders.
STATUS_BY_REQUEST = f"""
WITH who AS (
  SELECT u.id, to_json(u.currency)::text AS currency FROM {WHO_FROM}
),
asked AS (
  SELECT a.t, a.n, o.*, o.id IS NOT NULL AS own
  FROM unnest($2::text[]) WITH ORDINALITY AS a(t, n)
  LEFT JOIN LATERAL (
    SELECT * FROM orders
    WHERE orders.user_id = (SELECT id FROM who) AND orders.request_id = a.t
      AND orders.parent_id IS NULL
    LIMIT 1
  ) o ON true
),
rendered AS (
  SELECT t, n, own, NOT own OR {PLAIN} AS plain, CASE WHEN own THEN
    left({status_object("(SELECT currency FROM who)")}, -1) || ',"order":' || id || '}}'
  END AS object
  FROM asked
)
SELECT
  (SELECT currency FROM who) AS currency,
  coalesce(bool_and(plain), true) AS plain,
  (array_agg(object ORDER BY n))[1] AS first,
  '{{' || string_agg(to_json(t)::text || ':' || coalesce(object, $3::text), ',' ORDER BY n)
    || '}}' AS body
FROM rendered
"""

# The order an earlier `add` with this request id placed: twin of
# `app.orders.service.find_request` (the caller compares the digest).
REQUEST_ORDER = """
SELECT id, request_digest FROM orders WHERE user_id = $1 AND request_id = $2
"""

# Twin of `app.orders.service.stop_order` on the orders that were never sent (with
# `cancel_order`'s checks and `refund`'s ledger entry): each of the caller's orders among
# `$2` (distinct ids, in the order asked) that is Pending, queued or manual, not under
# review, on a service that allows cancel, is canceled and refunded in full, one ledger
# entry each (the twin of `app.ledger.service.credit` called order by order), the balance
# moving once. Every other id is left untouched for the full path to answer. The user row
# is locked first (`who`, evaluated before any order is touched): the lock order.
WITHDRAW = f"""
WITH who AS (SELECT u.id FROM {WHO_FROM} FOR UPDATE OF u),
gone AS (
  UPDATE orders o SET status = {sql_literal(CANCELED)},
    upstream_state = {sql_literal(UP_WITHDRAWN)},
    finished_at = now(), remains = o.quantity, refunded = o.refunded + o.charge,
    updated_at = now()
  FROM services s
  WHERE o.id = ANY($2::bigint[]) AND o.user_id = (SELECT id FROM who)
    AND o.parent_id IS NULL AND s.id = o.service_id AND s.cancel
    AND o.status = {sql_literal(PENDING)}
    AND o.upstream_state IN ({sql_list((UP_QUEUED, UP_MANUAL))})
    AND o.review_ticket_id IS NULL
  RETURNING o.id, o.charge
),
credited AS (
  UPDATE users SET balance = balance + (SELECT sum(charge) FROM gone)
  WHERE id = (SELECT id FROM who) AND EXISTS (SELECT 1 FROM gone WHERE charge > 0)
  RETURNING balance
),
entries AS (
  INSERT INTO ledger_entries (user_id, kind, amount, balance_after, reason, order_id)
  SELECT (SELECT id FROM who), {sql_literal(REFUND)}, g.charge,
    c.balance - (SELECT sum(charge) FROM gone) + sum(g.charge) OVER (ORDER BY a.n),
    'Order ' || g.id || ': Canceled before sending', g.id
  FROM gone g
  JOIN unnest($2::bigint[]) WITH ORDINALITY AS a(id, n) ON a.id = g.id
  CROSS JOIN credited c
  WHERE g.charge > 0
)
SELECT (SELECT id FROM who) AS user_id, array(SELECT id FROM gone) AS withdrawn
"""

# Group twin of ADD_ORDER: the adds of one user that arrived together (the hot path's group
# commit, app/orders/group.py; a mass order's lines), item n of the arrays being the n-th
# add in arrival order, placed as `place_order` would place them one after the other.
# Each item is re-checked as ADD_ORDER checks its one add (`fresh`: the key, the user, the
# service row and the rate; no order of the user on its target under review). Then, in
# arrival order, an item is taken when it is fresh, its request id names no order yet
# (`earlier_id`), no active order of the user holds its target (`duplicate`, the partial
# unique index's rule) and the balance left after the items taken before it still covers
# it above the credit floor: a later item the balance no longer covers fails alone and
# the others stand. The user's row is locked first (FOR UPDATE) so the walk reads the
# balance the debit moves; the debit is the sum of the items placed, once, and each
# placed item gets its ledger entry (the twin of `app.ledger.service.debit`, item by item,
# the balance after each as if debited one after the other). An item repeating an earlier
# item's target or request id (`repeat`) is never taken: the caller places it after this
# statement. An insert the unique indexes refuse (a concurrent add committed meanwhile)
# is skipped (no order id), the debit without it.
# $1: the key's hash (NULL: the caller has authenticated the user); $2: the user;
# $3..$18: one array per column, as ADD_ORDER's $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,
# $13 (JSON text), $14, $15, $16, $17, $18.
ADD_ORDERS = f"""
WITH RECURSIVE who AS (
  SELECT u.id, u.balance, u.credit_limit, u.discount_percent
  FROM users u
  WHERE u.id = $2 AND u.status = {sql_literal(USER_ACTIVE)}
    AND ($1::text IS NULL OR EXISTS (
      SELECT 1 FROM api_keys k
      WHERE k.key_hash = $1 AND k.revoked_at IS NULL AND k.user_id = u.id
    ))
  FOR UPDATE OF u
),
asked AS (
  SELECT a.*,
    row_number() OVER (PARTITION BY a.service_id, a.link_normalized ORDER BY a.n) > 1
      OR (a.request_id IS NOT NULL
        AND row_number() OVER (PARTITION BY a.request_id ORDER BY a.n) > 1) AS repeat
  FROM unnest(
    $3::bigint[], $4::text[], $5::numeric[], $6::numeric[], $7::text[], $8::text[],
    $9::text[], $10::bigint[], $11::int[], $12::int[], $13::text[], $14::text[],
    $15::bigint[], $16::text[], $17::text[], $18::text[]
  ) WITH ORDINALITY AS a(
    service_id, version, rate, charge, type, link, link_normalized, quantity, runs,
    interval_minutes, params, upstream_state, provider_id, provider_service_id,
    request_id, request_digest, n
  )
),
item AS (
  SELECT a.*,
    EXISTS (
      SELECT 1
      FROM who u
      JOIN services s ON s.id = a.service_id
      JOIN categories c ON c.id = s.category_id
      LEFT JOIN user_rates r ON r.user_id = u.id AND r.service_id = s.id
      WHERE s.xmin::text = a.version AND s.enabled AND s.deleted_at IS NULL AND c.enabled
        AND {effective_rate_sql("s.rate", "u.discount_percent", "r.rate")} = a.rate
    )
    -- `refuse_target_under_review`: no order of the user on this target is under review.
    AND NOT EXISTS (
      SELECT 1 FROM orders v
      WHERE v.user_id = $2 AND v.service_id = a.service_id
        AND v.link_normalized = a.link_normalized AND a.link_normalized <> ''
        AND v.review_ticket_id IS NOT NULL
    ) AS fresh,
    e.id AS earlier_id, e.request_digest AS earlier_digest,
    EXISTS (
      SELECT 1 FROM orders o
      WHERE o.user_id = $2 AND o.service_id = a.service_id
        AND o.link_normalized = a.link_normalized
        AND o.status IN ({sql_list(ACTIVE_STATUSES)}) AND o.parent_id IS NULL
    ) AS duplicate
  FROM asked a
  LEFT JOIN orders e ON e.user_id = $2 AND e.request_id = a.request_id
),
walk (n, left_, floor_, taken) AS (
  SELECT 0::bigint, (SELECT balance FROM who)::numeric, -(SELECT credit_limit FROM who)::numeric,
    false
  UNION ALL
  SELECT i.n,
    CASE WHEN ready AND w.left_ - i.charge >= w.floor_ THEN w.left_ - i.charge
      ELSE w.left_ END,
    w.floor_,
    coalesce(ready AND w.left_ - i.charge >= w.floor_, false)
  FROM walk w
  JOIN (
    SELECT item.*, fresh AND NOT repeat AND earlier_id IS NULL AND NOT duplicate AS ready
    FROM item
  ) i ON i.n = w.n + 1
),
placed AS (
  INSERT INTO orders (
    user_id, service_id, type, link, link_normalized, quantity, runs, interval_minutes,
    params, rate, charge, refunded, status, upstream_state, provider_id,
    provider_service_id, next_attempt_at, created_at, updated_at, request_id, request_digest
  )
  SELECT $2, i.service_id, i.type, i.link, i.link_normalized, i.quantity, i.runs,
    i.interval_minutes, i.params::jsonb, i.rate, i.charge, 0, {sql_literal(PENDING)},
    i.upstream_state, i.provider_id, i.provider_service_id,
    CASE WHEN i.upstream_state = {sql_literal(UP_QUEUED)} THEN now() END, now(), now(),
    i.request_id, i.request_digest
  FROM item i JOIN walk w ON w.n = i.n AND w.taken
  ORDER BY i.n
  ON CONFLICT DO NOTHING
  RETURNING id, service_id, link_normalized
),
charged AS (
  SELECT i.n, i.charge, p.id
  FROM placed p
  -- Items that are no repeat name distinct targets: one item per order placed.
  JOIN item i ON i.service_id = p.service_id AND i.link_normalized = p.link_normalized
    AND NOT i.repeat
),
debit AS (
  UPDATE users SET balance = balance - (SELECT sum(charge) FROM charged)
  WHERE id = $2 AND EXISTS (SELECT 1 FROM charged)
  RETURNING balance
),
entries AS (
  INSERT INTO ledger_entries (user_id, kind, amount, balance_after, reason, order_id)
  SELECT $2, {sql_literal(CHARGE)}, -c.charge,
    d.balance + (SELECT sum(charge) FROM charged) - sum(c.charge) OVER (ORDER BY c.n),
    'Order ' || c.id, c.id
  FROM charged c CROSS JOIN debit d
  ORDER BY c.n
)
SELECT EXISTS (SELECT 1 FROM who) AS known, i.n, i.fresh, i.repeat, i.earlier_id,
  i.earlier_digest, i.duplicate, w.taken, c.id AS order_id
FROM item i
JOIN walk w ON w.n = i.n
LEFT JOIN charged c ON c.n = i.n
ORDER BY i.n
"""
