"""orders: the client's request id of the add that placed it (optional extension)

Revision ID: c4d81e2a6f35
Revises: 5e2b7c41d9a3
Create Date: 2026-11-29 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4d81e2a6f35"
down_revision: str | None = "5e2b7c41d9a3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("request_id", sa.String(length=64)))
    op.add_column("orders", sa.Column("request_digest", sa.String(length=64)))
    op.create_index(
        "uq_orders_request_id",
        "orders",
        ["user_id", "request_id"],
        unique=True,
        postgresql_where=sa.text("request_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_orders_request_id",
        table_name="orders",
        postgresql_where=sa.text("request_id IS NOT NULL"),
    )
    op.drop_column("orders", "request_digest")
    op.drop_column("orders", "request_id")
