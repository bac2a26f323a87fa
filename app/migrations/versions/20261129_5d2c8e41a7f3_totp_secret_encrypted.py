"""TOTP seeds are stored encrypted with SECRET_KEY: the column holds a Fernet token.

Revision ID: 5d2c8e41a7f3
Revises: 69a414eb7c07
Create Date: 2026-11-29 10:00:00

"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5d2c8e41a7f3"
down_revision: str | None = "69a414eb7c07"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The table came with the previous revision, unreleased: no seed was ever stored in
    # clear outside development databases, where setting 2FA up again is the way out.
    op.alter_column(
        "customer_logins",
        "totp_secret",
        existing_type=sa.String(length=64),
        type_=sa.Text(),
        existing_nullable=True,
    )


def downgrade() -> None:
    # Encrypted seeds do not fit the old column: two-factor sign-in is switched off.
    op.execute("UPDATE customer_logins SET totp_secret = NULL, totp_enabled_at = NULL")
    op.alter_column(
        "customer_logins",
        "totp_secret",
        existing_type=sa.Text(),
        type_=sa.String(length=64),
        existing_nullable=True,
    )
