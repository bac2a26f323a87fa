"""SQL statements of the refills domain that restate a Python rule, each beside its twin
and tested as one (tests/test_sql_twins_api.py). State names come from Python."""

from __future__ import annotations

from app.accounts.sql import WHO_FROM
from app.db import sql_list, sql_literal
from app.orders.models import COMPLETED, PARTIAL, UP_MANUAL, UP_QUEUED, UP_SENT
from app.refills.models import R_PENDING

# ======================================================================================
# API v2 hot path (app/api_v2/lean.py): one statement per call on the plain asyncpg pool.
# ======================================================================================

# The caller's refills among `$2` (status by id); no row: the key is refused.
REFILL_STATUSES = f"""
WITH who AS (SELECT u.id FROM {WHO_FROM})
SELECT w.id AS user_id, r.id AS refill_id, r.status
FROM who w
LEFT JOIN refills r ON r.user_id = w.id AND r.id = ANY($2::bigint[])
"""

# Twin of `app.refills.service.request_refill`: each of the caller's orders among `$2`
# (distinct ids) that is Completed or Partial, not under review (ToS 2.5), on a service
# with refill, inside its refill window, gets a Pending refill (queued when the order was
# sent upstream, else manual) unless one is active. Every other id is left for the full
# path to answer.
REQUEST_REFILLS = f"""
WITH who AS (SELECT u.id FROM {WHO_FROM}),
ok AS (
  SELECT o.id, CASE WHEN o.upstream_state = {sql_literal(UP_SENT)} THEN {sql_literal(UP_QUEUED)}
    ELSE {sql_literal(UP_MANUAL)} END AS upstream_state
  FROM orders o JOIN services s ON s.id = o.service_id
  WHERE o.id = ANY($2::bigint[]) AND o.user_id = (SELECT id FROM who)
    AND o.parent_id IS NULL AND s.refill AND o.status IN ({sql_list((COMPLETED, PARTIAL))})
    AND NOT (s.refill_days > 0
      AND now() > coalesce(o.finished_at, o.updated_at) + s.refill_days * interval '24 hours')
    AND o.review_ticket_id IS NULL
  FOR UPDATE OF o
),
made AS (
  INSERT INTO refills (order_id, user_id, status, upstream_state, next_attempt_at)
  SELECT ok.id, (SELECT id FROM who), {sql_literal(R_PENDING)}, ok.upstream_state,
    CASE WHEN ok.upstream_state = {sql_literal(UP_QUEUED)} THEN now() END
  FROM ok
  ON CONFLICT DO NOTHING
  RETURNING id, order_id, upstream_state
)
SELECT w.id AS user_id, m.order_id, m.id AS refill_id, m.upstream_state
FROM who w LEFT JOIN made m ON true
"""
