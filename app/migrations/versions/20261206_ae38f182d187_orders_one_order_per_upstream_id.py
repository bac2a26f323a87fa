"""orders: an upstream order id names one order of its provider (unique index)

Two orders bound to one upstream order were both moved (and refunded) by its one status
report. From here the database refuses a second binding: a partial unique index on
(provider_id, provider_order_id), for orders that have one.

Orders already sharing an upstream id are settled first, deterministically: the earliest
order (lowest id) keeps it; each later one gives it up into its anomaly flag
(`duplicate_order_id`, the id as its value), its upstream history and an open
`order_anomaly` alert, as the relay now does for such an answer. A later order still
active upstream (`sent`) is held in review for the operator (mark it sent with its real
id, or cancel it); a finished one keeps its state. Downgrade drops the index only.

Revision ID: ae38f182d187
Revises: a34d523aaf04
Create Date: 2026-11-30 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "ae38f182d187"
down_revision: str | None = "a34d523aaf04"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BOUND = sa.text("provider_order_id IS NOT NULL")

# The later orders of each shared upstream id, with the order that keeps it.
SETTLE_DUPLICATES = """
WITH ranked AS (
    SELECT id, provider_id, provider_order_id,
        first_value(id) OVER (
            PARTITION BY provider_id, provider_order_id ORDER BY id
        ) AS holder
    FROM orders
    WHERE provider_order_id IS NOT NULL AND provider_id IS NOT NULL
), later AS (
    SELECT id, provider_id, provider_order_id, holder,
        jsonb_build_array(jsonb_build_object(
            'kind', 'duplicate_order_id', 'field', 'order', 'value', provider_order_id
        )) AS anomaly
    FROM ranked WHERE id <> holder
), settled AS (
    UPDATE orders AS o SET
        provider_order_id = NULL,
        upstream_state = CASE
            WHEN o.upstream_state = 'sent'
                AND o.status IN ('Pending', 'In progress', 'Processing')
            THEN 'review' ELSE o.upstream_state END,
        anomaly = later.anomaly,
        anomaly_at = now(),
        last_error = 'provider order id ' || later.provider_order_id
            || ' already belongs to order ' || later.holder,
        updated_at = now()
    FROM later
    WHERE o.id = later.id
    RETURNING o.id
), events AS (
    INSERT INTO upstream_events (order_id, action, outcome, detail, created_at)
    SELECT later.id, 'add', 'anomaly', jsonb_build_object(
        'source', 'migration', 'provider_order_id', later.provider_order_id,
        'bound_to', later.holder, 'anomalies', later.anomaly
    ), now()
    FROM later
)
INSERT INTO alerts (kind, subject, subject_id, message, detail, open_key, created_at)
SELECT 'order_anomaly', 'order', later.id,
    'order ' || later.id || ': provider answer not applied: order duplicate_order_id ('
        || later.provider_order_id || ')',
    jsonb_build_object(
        'provider_id', later.provider_id, 'action', 'add', 'anomalies', later.anomaly
    ),
    'order_anomaly:order:' || later.id, now()
FROM later
ON CONFLICT (open_key) DO NOTHING
"""


def upgrade() -> None:
    op.execute(SETTLE_DUPLICATES)
    op.create_index(
        "uq_orders_provider_order_id",
        "orders",
        ["provider_id", "provider_order_id"],
        unique=True,
        postgresql_where=BOUND,
    )


def downgrade() -> None:
    op.drop_index("uq_orders_provider_order_id", table_name="orders", postgresql_where=BOUND)
