"""catalog version: a counter bumped by triggers on every catalog or custom-rate change

Revision ID: 3b1f0c7a9d21
Revises: b7d4e2f91c08
Create Date: 2026-11-29 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3b1f0c7a9d21"
down_revision: str | None = "b7d4e2f91c08"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Kept literal here (a migration is a snapshot): the tables `services` renders from,
# app/catalog/sql.py CATALOG_VERSIONED_TABLES.
TABLES = ("categories", "services", "user_rates")


def upgrade() -> None:
    op.create_table(
        "catalog_version",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), server_default="0", nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_catalog_version_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_version")),
    )
    op.execute("INSERT INTO catalog_version (id, version) VALUES (1, 0)")
    op.execute(
        """
        CREATE FUNCTION bump_catalog_version() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          UPDATE catalog_version SET version = version + 1 WHERE id = 1;
          RETURN NULL;
        END $$
        """
    )
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_bump_catalog_version"
            f" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION bump_catalog_version()"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_bump_catalog_version ON {table}")
    op.execute("DROP FUNCTION IF EXISTS bump_catalog_version()")
    op.drop_table("catalog_version")
