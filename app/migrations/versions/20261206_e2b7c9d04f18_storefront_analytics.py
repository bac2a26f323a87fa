"""storefront: analytics and chat ids (Yandex.Metrica, Google Analytics, Chaport)

Revision ID: e2b7c9d04f18
Revises: d8a1f3c6b940
Create Date: 2026-12-06 18:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e2b7c9d04f18"
down_revision: str | None = "d8a1f3c6b940"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("storefront", sa.Column("metrica_id", sa.String(length=20), nullable=True))
    op.add_column("storefront", sa.Column("ga_id", sa.String(length=20), nullable=True))
    op.add_column("storefront", sa.Column("chaport_id", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("storefront", "chaport_id")
    op.drop_column("storefront", "ga_id")
    op.drop_column("storefront", "metrica_id")
