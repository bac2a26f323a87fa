"""customers: the currency a customer reads amounts and types deposits in (None: the panel's)

Revision ID: b5d2e8f41c07
Revises: a4c81e2f9b37
Create Date: 2026-12-06 17:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b5d2e8f41c07"
down_revision: str | None = "a4c81e2f9b37"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "customer_logins", sa.Column("display_currency", sa.String(length=3), nullable=True)
    )


def downgrade() -> None:
    op.drop_column("customer_logins", "display_currency")
