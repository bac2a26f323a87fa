"""status webhooks: endpoints, the event outbox, and the triggers that fill it

Revision ID: e5a7c2d913f8
Revises: d92f0b6c1e47
Create Date: 2026-11-29 10:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "e5a7c2d913f8"
down_revision: str | None = "d92f0b6c1e47"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("delivered_at IS NULL AND failed_at IS NULL")

# One event per status change of a user's order (not a drip-feed run) or refill, written
# in the transaction of the change, whichever statement made it; only for users with an
# enabled endpoint. Money as the `status` action prints it (5 places at least).
TRIGGERS = [
    """
CREATE FUNCTION webhook_order_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO webhook_events (user_id, order_id, type, payload)
  SELECT NEW.user_id, NEW.id, 'order.status', jsonb_build_object(
    'type', 'order.status',
    'order', NEW.id,
    'request_id', NEW.request_id,
    'status', NEW.status,
    'start_count', coalesce(NEW.start_count, 0)::text,
    'remains', coalesce(NEW.remains, NEW.quantity)::text,
    'charge', round(NEW.charge, greatest(5, scale(trim_scale(NEW.charge))))::text,
    'currency', u.currency,
    'at', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
  FROM webhook_endpoints w JOIN users u ON u.id = w.user_id
  WHERE w.user_id = NEW.user_id AND w.enabled;
  RETURN NULL;
END $$""",
    """CREATE TRIGGER orders_status_webhook AFTER UPDATE OF status ON orders FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.parent_id IS NULL)
  EXECUTE FUNCTION webhook_order_status()""",
    """CREATE FUNCTION webhook_refill_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO webhook_events (user_id, order_id, refill_id, type, payload)
  SELECT NEW.user_id, NEW.order_id, NEW.id, 'refill.status', jsonb_build_object(
    'type', 'refill.status',
    'refill', NEW.id,
    'order', NEW.order_id,
    'status', NEW.status,
    'at', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
  FROM webhook_endpoints w
  WHERE w.user_id = NEW.user_id AND w.enabled;
  RETURN NULL;
END $$""",
    """CREATE TRIGGER refills_status_webhook AFTER UPDATE OF status ON refills FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION webhook_refill_status()""",
]


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("disabled_reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("user_id"),
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("refill_id", sa.BigInteger(), nullable=True),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_webhook_events_due", "webhook_events", ["next_attempt_at"], postgresql_where=PENDING
    )
    op.create_index("ix_webhook_events_user_id_id", "webhook_events", ["user_id", "id"])
    op.create_index(
        "ix_webhook_events_pending_order",
        "webhook_events",
        ["order_id", "id"],
        postgresql_where=PENDING,
    )
    for statement in TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER IF EXISTS refills_status_webhook ON refills")
    op.execute("DROP FUNCTION IF EXISTS webhook_refill_status()")
    op.execute("DROP TRIGGER IF EXISTS orders_status_webhook ON orders")
    op.execute("DROP FUNCTION IF EXISTS webhook_order_status()")
    op.drop_index("ix_webhook_events_pending_order", table_name="webhook_events")
    op.drop_index("ix_webhook_events_user_id_id", table_name="webhook_events")
    op.drop_index("ix_webhook_events_due", table_name="webhook_events")
    op.drop_table("webhook_events")
    op.drop_table("webhook_endpoints")
