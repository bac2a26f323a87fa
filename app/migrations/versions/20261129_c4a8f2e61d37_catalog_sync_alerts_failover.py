"""catalog sync, pricing rules, alerts and failover providers

Revision ID: c4a8f2e61d37
Revises: 5d2c8e41a7f3
Create Date: 2026-11-29 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c4a8f2e61d37"
down_revision: str | None = "5d2c8e41a7f3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(20, 8)


def upgrade() -> None:
    op.add_column(
        "services", sa.Column("pricing", sa.String(10), server_default="fixed", nullable=False)
    )
    op.add_column("services", sa.Column("price_multiplier", MONEY))
    op.add_column("services", sa.Column("price_fixed", MONEY))
    op.add_column("services", sa.Column("price_step", MONEY))
    op.add_column("services", sa.Column("held", sa.String(40)))
    op.add_column("services", sa.Column("pending_type", sa.String(40)))
    op.add_column("services", sa.Column("upstream", postgresql.JSONB(astext_type=sa.Text())))
    op.add_column("services", sa.Column("stuck_after_seconds", sa.Integer()))
    op.add_column("providers", sa.Column("balance_threshold", MONEY))
    op.add_column(
        "providers", sa.Column("sync_minutes", sa.Integer(), server_default="60", nullable=False)
    )
    op.add_column("providers", sa.Column("last_sync_at", sa.DateTime(timezone=True)))
    op.add_column("providers", sa.Column("last_sync_error", sa.Text()))
    op.create_table(
        "service_backups",
        sa.Column("service_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.BigInteger(), nullable=False),
        sa.Column("provider_service_id", sa.String(64), nullable=False),
        sa.Column("provider_rate", MONEY),
        sa.CheckConstraint("provider_rate >= 0", name=op.f("ck_service_backups_provider_rate")),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_service_backups_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["service_id"],
            ["services.id"],
            name=op.f("fk_service_backups_service_id_services"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("service_id", "position", name=op.f("pk_service_backups")),
    )
    op.create_table(
        "catalog_changes",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("provider_id", sa.BigInteger(), nullable=False),
        sa.Column("provider_service_id", sa.String(64), nullable=False),
        sa.Column("service_id", sa.BigInteger()),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("before", sa.Text()),
        sa.Column("after", sa.Text()),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_catalog_changes_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_changes")),
    )
    op.create_index("ix_catalog_changes_provider_id_id", "catalog_changes", ["provider_id", "id"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(20), nullable=False),
        sa.Column("subject_id", sa.BigInteger(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "detail",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("open_key", sa.String(120)),
        sa.Column("resolved_at", sa.DateTime(timezone=True)),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("open_key", name=op.f("uq_alerts_open_key")),
    )
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_created_at", table_name="alerts")
    op.drop_table("alerts")
    op.drop_index("ix_catalog_changes_provider_id_id", table_name="catalog_changes")
    op.drop_table("catalog_changes")
    op.drop_table("service_backups")
    for column in ("last_sync_error", "last_sync_at", "sync_minutes", "balance_threshold"):
        op.drop_column("providers", column)
    for column in (
        "stuck_after_seconds",
        "upstream",
        "pending_type",
        "held",
        "price_step",
        "price_fixed",
        "price_multiplier",
        "pricing",
    ):
        op.drop_column("services", column)
