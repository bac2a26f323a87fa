"""services: the average completion time of a service's recent orders, in seconds (None: not
measured yet)

Revision ID: d81f3a6c2e54
Revises: 4582e425f1a6
Create Date: 2026-12-06 17:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d81f3a6c2e54"
down_revision: str | None = "4582e425f1a6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("services", sa.Column("average_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("services", "average_seconds")
