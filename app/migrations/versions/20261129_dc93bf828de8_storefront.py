"""storefront: the panel's name, logo and legal texts set at run time by the operator

Revision ID: dc93bf828de8
Revises: a7c3e9d15b28
Create Date: 2026-11-29 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "dc93bf828de8"
down_revision: str | None = "a7c3e9d15b28"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "storefront",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("logo", sa.LargeBinary(), nullable=True),
        sa.Column("logo_type", sa.String(length=20), nullable=True),
        sa.Column("terms", sa.Text(), nullable=True),
        sa.Column("privacy_policy", sa.Text(), nullable=True),
        sa.Column("terms_of_use", sa.Text(), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("id = 1", name=op.f("ck_storefront_single_row")),
        sa.CheckConstraint(
            "(logo IS NULL) = (logo_type IS NULL)", name=op.f("ck_storefront_logo_with_type")
        ),
        sa.CheckConstraint(
            "logo_type IN ('image/png', 'image/svg+xml', 'image/jpeg', 'image/webp')",
            name=op.f("ck_storefront_logo_type"),
        ),
        sa.CheckConstraint("octet_length(logo) <= 204800", name=op.f("ck_storefront_logo_size")),
        sa.CheckConstraint("btrim(name) <> ''", name=op.f("ck_storefront_name_not_blank")),
        sa.CheckConstraint("char_length(terms) <= 50000", name=op.f("ck_storefront_terms_length")),
        sa.CheckConstraint(
            "char_length(privacy_policy) <= 50000",
            name=op.f("ck_storefront_privacy_policy_length"),
        ),
        sa.CheckConstraint(
            "char_length(terms_of_use) <= 50000", name=op.f("ck_storefront_terms_of_use_length")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storefront")),
    )


def downgrade() -> None:
    op.drop_table("storefront")
