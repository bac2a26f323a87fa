"""chargebacks: a disputed or reversed payment blocks, forfeits and cancels once per user

Revision ID: d8a1f3c6b940
Revises: c5d2e8f41a69
Create Date: 2026-12-06 18:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d8a1f3c6b940"
down_revision: str | None = "c5d2e8f41a69"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chargebacks",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("payment_id", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column(
            "forfeited", sa.Numeric(precision=20, scale=8), server_default="0", nullable=False
        ),
        sa.Column(
            "withdrawn",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "cancel_requested",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("receipt_status", sa.String(length=16), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_chargebacks_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chargebacks")),
        sa.UniqueConstraint("user_id", name="uq_chargebacks_user_id"),
    )


def downgrade() -> None:
    op.drop_table("chargebacks")
