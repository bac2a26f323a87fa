"""The margin report's statements. COST_EXPR restates `order_cost` and UNPRICED_EXPR restates
`unpriced` (app/reports/service.py) for PostgreSQL, so a range of orders is costed in one
statement; they are kept equal by tests/test_reports.py::test_cost_sql_is_the_twin_of_order_cost
and ::test_unpriced_sql_is_the_twin_of_unpriced."""

from __future__ import annotations

from app.db import sql_list
from app.db import sql_literal as literal
from app.ledger.models import CHARGE, REFUND
from app.orders.models import CANCELED, PARTIAL, UP_QUEUED, UP_REVIEW, UP_SENDING

# What the provider bills for one sent order `o`, in its currency.
COST_EXPR = f"""CASE
    WHEN o.status = {literal(CANCELED)} THEN 0
    WHEN o.status = {literal(PARTIAL)}
      THEN o.provider_charge * (o.quantity - COALESCE(o.remains, 0)) / o.quantity
    ELSE o.provider_charge
  END"""

# Whether the cost of order `o` is unknown: not yet accepted upstream (and not canceled), or
# sent without the provider's charge or a conversion rate.
AWAITING_UPSTREAM = (UP_QUEUED, UP_SENDING, UP_REVIEW)
UNPRICED_EXPR = f"""CASE
    WHEN o.provider_order_id IS NOT NULL
      THEN o.provider_charge IS NULL OR o.fx_rate IS NULL
    ELSE o.upstream_state IN ({sql_list(AWAITING_UPSTREAM)}) AND o.status <> {literal(CANCELED)}
  END"""

# The UTC day an order was placed: the key of the report per day.
DAY_KEY = "(o.created_at AT TIME ZONE 'UTC')::date"

GROUPS = {
    "service": ("o.service_id", "SELECT id, name FROM services WHERE id = ANY(:keys)"),
    "provider": ("o.provider_id", "SELECT id, name FROM providers WHERE id = ANY(:keys)"),
}

REVENUE = f"""
    SELECT {{key}} AS key, -SUM(l.amount) AS revenue
    FROM ledger_entries l JOIN orders o ON o.id = l.order_id
    WHERE l.kind IN ({literal(CHARGE)}, {literal(REFUND)})
        AND o.created_at >= :start AND o.created_at < :end
    GROUP BY 1
"""
ORDERS = """
    SELECT {key} AS key, COUNT(*) AS orders
    FROM orders o
    WHERE o.parent_id IS NULL AND o.created_at >= :start AND o.created_at < :end
    GROUP BY 1
"""
COST = (
    """
    SELECT {key} AS key,
           SUM("""
    + COST_EXPR
    + """ * o.fx_rate) FILTER (WHERE NOT ("""
    + UNPRICED_EXPR
    + """) AND o.provider_order_id IS NOT NULL) AS cost,
           COUNT(*) FILTER (WHERE """
    + UNPRICED_EXPR
    + """) AS unpriced,
           SUM(o.charge - o.refunded) FILTER (WHERE """
    + UNPRICED_EXPR
    + """) AS unpriced_revenue
    FROM orders o
    WHERE (o.provider_order_id IS NOT NULL OR o.upstream_state IN ("""
    + sql_list(AWAITING_UPSTREAM)
    + """))
      AND o.created_at >= :start AND o.created_at < :end
    GROUP BY 1
"""
)
