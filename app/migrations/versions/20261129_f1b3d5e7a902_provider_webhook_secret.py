"""providers: the signing secret of the status webhook we registered with them

Revision ID: f1b3d5e7a902
Revises: e5a7c2d913f8
Create Date: 2026-11-29 10:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f1b3d5e7a902"
down_revision: str | None = "e5a7c2d913f8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("providers", sa.Column("webhook_secret_encrypted", sa.Text()))


def downgrade() -> None:
    op.drop_column("providers", "webhook_secret_encrypted")
