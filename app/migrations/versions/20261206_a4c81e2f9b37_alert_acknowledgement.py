"""alerts: an operator acknowledges an alert (who and when), which leaves the open ones

Revision ID: a4c81e2f9b37
Revises: c7f629ba1bdb
Create Date: 2026-12-06 05:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a4c81e2f9b37"
down_revision: str | None = "c7f629ba1bdb"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("alerts", sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("alerts", sa.Column("acknowledged_by", sa.String(length=200), nullable=True))


def downgrade() -> None:
    op.drop_column("alerts", "acknowledged_by")
    op.drop_column("alerts", "acknowledged_at")
