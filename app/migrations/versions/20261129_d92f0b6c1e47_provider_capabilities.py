"""providers: the optional extensions they speak; orders: the request id sent upstream

Revision ID: d92f0b6c1e47
Revises: c4d81e2a6f35
Create Date: 2026-11-29 10:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d92f0b6c1e47"
down_revision: str | None = "c4d81e2a6f35"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLAGS = ("cap_request_id", "cap_status_by_request_id", "cap_webhooks", "capabilities_pinned")


def upgrade() -> None:
    for name in FLAGS:
        op.add_column(
            "providers",
            sa.Column(name, sa.Boolean(), server_default=sa.text("false"), nullable=False),
        )
    op.add_column("providers", sa.Column("capabilities_checked_at", sa.DateTime(timezone=True)))
    op.add_column("orders", sa.Column("upstream_request_id", sa.String(length=64)))


def downgrade() -> None:
    op.drop_column("orders", "upstream_request_id")
    op.drop_column("providers", "capabilities_checked_at")
    for name in reversed(FLAGS):
        op.drop_column("providers", name)
