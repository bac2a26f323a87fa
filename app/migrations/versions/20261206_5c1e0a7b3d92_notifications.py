"""notifications: a customer's choices, the Telegram link, the outbox and the triggers that fill it

Revision ID: 5c1e0a7b3d92
Revises: e2b7c9d04f18
Create Date: 2026-12-06 17:27:14.615396
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5c1e0a7b3d92"
# Also where the two heads of 10f32c649b75 (referral payouts) and d81f3a6c2e54 meet.
down_revision: str | None = "e2b7c9d04f18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A notification is written in the transaction of the change it tells about, whichever
# statement made it, and only for what the customer chose on a channel they have: an order
# of theirs (not a drip-feed run) reaching Completed, Partial or Canceled (once per order
# and event), and a balance falling below the amount they set (once per crossing).
TRIGGERS = [
    """
CREATE FUNCTION notify_order_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO notification_outbox (user_id, event, order_id)
  SELECT NEW.user_id, 'order_' || lower(NEW.status), NEW.id
  FROM notification_settings s
  WHERE s.user_id = NEW.user_id
    AND (s.by_mail OR s.telegram_chat_id IS NOT NULL)
    AND CASE NEW.status WHEN 'Completed' THEN s.order_completed
                        WHEN 'Partial' THEN s.order_partial
                        ELSE s.order_canceled END
  ON CONFLICT (order_id, event) WHERE order_id IS NOT NULL DO NOTHING;
  RETURN NULL;
END $$""",
    """CREATE TRIGGER orders_notify_final AFTER UPDATE OF status ON orders FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.parent_id IS NULL
        AND NEW.status IN ('Completed', 'Partial', 'Canceled'))
  EXECUTE FUNCTION notify_order_final()""",
    """
CREATE FUNCTION notify_balance_low() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO notification_outbox (user_id, event, balance)
  SELECT NEW.id, 'balance_low', NEW.balance
  FROM notification_settings s
  WHERE s.user_id = NEW.id AND s.low_balance
    AND (s.by_mail OR s.telegram_chat_id IS NOT NULL)
    AND OLD.balance >= s.low_balance_below AND NEW.balance < s.low_balance_below;
  RETURN NULL;
END $$""",
    """CREATE TRIGGER users_notify_balance_low AFTER UPDATE OF balance ON users FOR EACH ROW
  WHEN (NEW.balance < OLD.balance)
  EXECUTE FUNCTION notify_balance_low()""",
]


def upgrade() -> None:
    op.create_table(
        "telegram_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("next_offset", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("bot_username", sa.String(length=64), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_telegram_state_one_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telegram_state")),
    )
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=True),
        sa.Column("balance", sa.Numeric(precision=20, scale=8), nullable=True),
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
        sa.Column("mail_done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("telegram_done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "event IN ('order_completed', 'order_partial', 'order_canceled', 'balance_low')",
            name=op.f("ck_notification_outbox_event"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notification_outbox_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_outbox")),
    )
    op.create_index(
        "ix_notification_outbox_due",
        "notification_outbox",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("done_at IS NULL"),
    )
    op.create_index(
        "ix_notification_outbox_user_id_id", "notification_outbox", ["user_id", "id"], unique=False
    )
    op.create_index(
        "uq_notification_outbox_order_event",
        "notification_outbox",
        ["order_id", "event"],
        unique=True,
        postgresql_where=sa.text("order_id IS NOT NULL"),
    )
    op.create_table(
        "notification_settings",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("order_completed", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("order_partial", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("order_canceled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("low_balance", sa.Boolean(), server_default="false", nullable=False),
        sa.Column(
            "low_balance_below",
            sa.Numeric(precision=20, scale=8),
            server_default="0",
            nullable=False,
        ),
        sa.Column("by_mail", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("telegram_chat_id", sa.BigInteger(), nullable=True),
        sa.Column("telegram_linked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("telegram_code_hash", sa.String(length=64), nullable=True),
        sa.Column("telegram_code_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notification_settings_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_notification_settings")),
        sa.UniqueConstraint(
            "telegram_code_hash", name=op.f("uq_notification_settings_telegram_code_hash")
        ),
    )
    for statement in TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER users_notify_balance_low ON users")
    op.execute("DROP FUNCTION notify_balance_low()")
    op.execute("DROP TRIGGER orders_notify_final ON orders")
    op.execute("DROP FUNCTION notify_order_final()")
    op.drop_table("notification_settings")
    op.drop_index(
        "uq_notification_outbox_order_event",
        table_name="notification_outbox",
        postgresql_where=sa.text("order_id IS NOT NULL"),
    )
    op.drop_index("ix_notification_outbox_user_id_id", table_name="notification_outbox")
    op.drop_index(
        "ix_notification_outbox_due",
        table_name="notification_outbox",
        postgresql_where=sa.text("done_at IS NULL"),
    )
    op.drop_table("notification_outbox")
    op.drop_table("telegram_state")
