"""legal: versions of the legal texts and the customers' acceptances of them

Revision ID: b1e4a7c93d52
Revises: 10f32c649b75
Create Date: 2026-12-06 17:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b1e4a7c93d52"
down_revision: str | None = "10f32c649b75"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "legal_versions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=2), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column(
            "published_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.CheckConstraint(
            "document IN ('terms', 'privacy', 'terms-of-use')",
            name=op.f("ck_legal_versions_document"),
        ),
        sa.CheckConstraint("language IN ('en', 'ru')", name=op.f("ck_legal_versions_language")),
        sa.CheckConstraint(
            "char_length(text) BETWEEN 1 AND 50000", name=op.f("ck_legal_versions_text_length")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_versions")),
    )
    op.create_index(
        "ix_legal_versions_document_language_id",
        "legal_versions",
        ["document", "language", "id"],
        unique=False,
    )
    op.create_table(
        "legal_acceptances",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("version_id", sa.BigInteger(), nullable=False),
        sa.Column("document", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column(
            "at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint(
            "action IN ('registration', 'order', 'deposit')",
            name=op.f("ck_legal_acceptances_action"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_legal_acceptances_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["legal_versions.id"],
            name=op.f("fk_legal_acceptances_version_id_legal_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_acceptances")),
    )
    op.create_index(
        "ix_legal_acceptances_user_id_id", "legal_acceptances", ["user_id", "id"], unique=False
    )
    op.create_index(
        "uq_legal_acceptances_order_once",
        "legal_acceptances",
        ["user_id", "version_id"],
        unique=True,
        postgresql_where=sa.text("action = 'order'"),
    )


def downgrade() -> None:
    op.drop_index("uq_legal_acceptances_order_once", table_name="legal_acceptances")
    op.drop_index("ix_legal_acceptances_user_id_id", table_name="legal_acceptances")
    op.drop_table("legal_acceptances")
    op.drop_index("ix_legal_versions_document_language_id", table_name="legal_versions")
    op.drop_table("legal_versions")
