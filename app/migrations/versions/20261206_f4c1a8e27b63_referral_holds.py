"""referrals: rewards held for review on abuse signals; where customers signed up and in

Revision ID: f4c1a8e27b63
Revises: 7e2b9c4d1a60
Create Date: 2026-12-06 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f4c1a8e27b63"
down_revision: str | None = "7e2b9c4d1a60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "referral_rewards", sa.Column("hold_reason", sa.String(length=300), nullable=True)
    )
    op.add_column(
        "referral_rewards", sa.Column("released_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "referral_rewards", sa.Column("released_by", sa.String(length=200), nullable=True)
    )
    op.drop_constraint(op.f("ck_referral_rewards_status"), "referral_rewards", type_="check")
    op.create_check_constraint(
        op.f("ck_referral_rewards_status"),
        "referral_rewards",
        "status IN ('credited', 'accrued', 'voided', 'held')",
    )
    op.create_check_constraint(
        op.f("ck_referral_rewards_credited"),
        "referral_rewards",
        "status <> 'credited' OR ledger_entry_id IS NOT NULL",
    )
    op.create_check_constraint(
        op.f("ck_referral_rewards_held"),
        "referral_rewards",
        "status <> 'held' OR ledger_entry_id IS NULL",
    )
    op.create_table(
        "client_traces",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("device", sa.String(length=64), nullable=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_client_traces_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_traces")),
    )
    op.create_index("ix_client_traces_device", "client_traces", ["device"], unique=False)
    op.create_index("ix_client_traces_ip", "client_traces", ["ip"], unique=False)
    op.create_index("ix_client_traces_user_id", "client_traces", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_client_traces_user_id", table_name="client_traces")
    op.drop_index("ix_client_traces_ip", table_name="client_traces")
    op.drop_index("ix_client_traces_device", table_name="client_traces")
    op.drop_table("client_traces")
    op.drop_constraint(op.f("ck_referral_rewards_held"), "referral_rewards", type_="check")
    op.drop_constraint(op.f("ck_referral_rewards_credited"), "referral_rewards", type_="check")
    op.drop_constraint(op.f("ck_referral_rewards_status"), "referral_rewards", type_="check")
    op.create_check_constraint(
        op.f("ck_referral_rewards_status"),
        "referral_rewards",
        "status IN ('credited', 'accrued', 'voided')",
    )
    op.drop_column("referral_rewards", "released_by")
    op.drop_column("referral_rewards", "released_at")
    op.drop_column("referral_rewards", "hold_reason")
