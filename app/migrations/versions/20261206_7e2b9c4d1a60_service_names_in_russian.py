"""services: a name and a description for Russian-speaking customers (the English ones where empty)

Revision ID: 7e2b9c4d1a60
Revises: 5c1e0a7b3d92
Create Date: 2026-12-06 17:57:21.671599
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7e2b9c4d1a60"
down_revision: str | None = "5c1e0a7b3d92"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("services", sa.Column("name_ru", sa.String(length=300), nullable=True))
    op.add_column("services", sa.Column("description_ru", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("services", "description_ru")
    op.drop_column("services", "name_ru")
