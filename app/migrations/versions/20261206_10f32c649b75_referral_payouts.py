"""referral payouts: rewards may accrue until the referrer asks for a payout, paid at once or after review

Revision ID: 10f32c649b75
Revises: d81f3a6c2e54
Create Date: 2026-12-06 17:13:54.318020
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "10f32c649b75"
down_revision: str | None = "d81f3a6c2e54"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "referral_payouts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=20, scale=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("reject_reason", sa.String(length=300), nullable=True),
        sa.Column("ledger_entry_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'paid', 'rejected')", name=op.f("ck_referral_payouts_status")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_referral_payouts_amount")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_referral_payouts_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_payouts")),
    )
    op.create_index(
        "ix_referral_payouts_user_id_id", "referral_payouts", ["user_id", "id"], unique=False
    )
    op.create_index(
        "uq_referral_payouts_pending",
        "referral_payouts",
        ["user_id"],
        unique=True,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.add_column("referral_rewards", sa.Column("payout_id", sa.BigInteger(), nullable=True))
    op.alter_column("referral_rewards", "ledger_entry_id", existing_type=sa.BIGINT(), nullable=True)
    op.create_index(
        "ix_referral_rewards_payout_id",
        "referral_rewards",
        ["payout_id"],
        unique=False,
        postgresql_where=sa.text("payout_id IS NOT NULL"),
    )
    op.create_foreign_key(
        op.f("fk_referral_rewards_payout_id_referral_payouts"),
        "referral_rewards",
        "referral_payouts",
        ["payout_id"],
        ["id"],
    )
    op.drop_constraint(op.f("ck_referral_rewards_status"), "referral_rewards", type_="check")
    op.create_check_constraint(
        op.f("ck_referral_rewards_status"),
        "referral_rewards",
        "status IN ('credited', 'accrued', 'voided')",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_referral_rewards_status"), "referral_rewards", type_="check")
    op.create_check_constraint(
        op.f("ck_referral_rewards_status"), "referral_rewards", "status IN ('credited', 'voided')"
    )
    op.drop_constraint(
        op.f("fk_referral_rewards_payout_id_referral_payouts"),
        "referral_rewards",
        type_="foreignkey",
    )
    op.drop_index(
        "ix_referral_rewards_payout_id",
        table_name="referral_rewards",
        postgresql_where=sa.text("payout_id IS NOT NULL"),
    )
    op.alter_column(
        "referral_rewards", "ledger_entry_id", existing_type=sa.BIGINT(), nullable=False
    )
    op.drop_column("referral_rewards", "payout_id")
    op.drop_index(
        "uq_referral_payouts_pending",
        table_name="referral_payouts",
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.drop_index("ix_referral_payouts_user_id_id", table_name="referral_payouts")
    op.drop_table("referral_payouts")
