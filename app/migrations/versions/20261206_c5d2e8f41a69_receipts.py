"""receipts: one per credited deposit, registered with the tax service or by the gateway

Revision ID: c5d2e8f41a69
Revises: b1e4a7c93d52
Create Date: 2026-12-06 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c5d2e8f41a69"
down_revision: str | None = "b1e4a7c93d52"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "receipts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("deposit_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("payment_id", sa.BigInteger(), nullable=True),
        sa.Column("amount", sa.Numeric(precision=20, scale=8), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("backend", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("external_id", sa.String(length=100), nullable=True),
        sa.Column("url", sa.String(length=500), nullable=True),
        sa.Column("operation_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False
        ),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_receipts_amount")),
        sa.CheckConstraint(
            "backend IN ('self-employed', 'gateway')", name=op.f("ck_receipts_backend")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'registered', 'cancel_pending', 'cancelled', 'gateway', "
            "'failed')",
            name=op.f("ck_receipts_status"),
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_receipts_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipts")),
        sa.UniqueConstraint("deposit_entry_id", name=op.f("uq_receipts_deposit_entry_id")),
    )
    op.create_index(
        "ix_receipts_due",
        "receipts",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('pending', 'cancel_pending')"),
    )
    op.create_index("ix_receipts_payment_id", "receipts", ["payment_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_receipts_payment_id", table_name="receipts")
    op.drop_index("ix_receipts_due", table_name="receipts")
    op.drop_table("receipts")
