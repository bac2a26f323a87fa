"""orders: the operator-visible flag of an anomalous provider report

Revision ID: a7c3e51d0b92
Revises: 4f811be72051
Create Date: 2026-11-29 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "a7c3e51d0b92"
down_revision: str | None = "4f811be72051"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("orders", sa.Column("anomaly", postgresql.JSONB(astext_type=sa.Text())))
    op.add_column("orders", sa.Column("anomaly_at", sa.DateTime(timezone=True)))
    op.create_index(
        "ix_orders_anomaly",
        "orders",
        ["id"],
        unique=False,
        postgresql_where=sa.text("anomaly IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_orders_anomaly", table_name="orders", postgresql_where=sa.text("anomaly IS NOT NULL")
    )
    op.drop_column("orders", "anomaly_at")
    op.drop_column("orders", "anomaly")
