"""support tickets, their messages, canned answers, review resolutions; orders under review

Revision ID: 5e2b7c41d9a3
Revises: c4a8f2e61d37
Create Date: 2026-11-29 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "5e2b7c41d9a3"
down_revision: str | None = "c4a8f2e61d37"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="open", nullable=False),
        sa.Column(
            "order_ids", postgresql.ARRAY(sa.BigInteger()), server_default="{}", nullable=False
        ),
        sa.Column("assignee", sa.String(length=200), nullable=True),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('open', 'answered', 'closed')", name=op.f("ck_tickets_status")
        ),
        sa.CheckConstraint(
            "category IN ('order', 'payment', 'refill', 'cancel', 'other')",
            name=op.f("ck_tickets_category"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_tickets_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
    )
    op.create_index("ix_tickets_user_id_id", "tickets", ["user_id", "id"])
    op.create_index("ix_tickets_status_waiting", "tickets", ["status", "waiting_since"])
    op.create_index("ix_tickets_created_at", "tickets", ["created_at"])
    op.create_table(
        "ticket_messages",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=False),
        sa.Column("author", sa.String(length=16), nullable=False),
        sa.Column("operator", sa.String(length=200), nullable=True),
        sa.Column("internal", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "author IN ('customer', 'operator')", name=op.f("ck_ticket_messages_author")
        ),
        sa.CheckConstraint(
            "author = 'operator' OR NOT internal",
            name=op.f("ck_ticket_messages_internal_by_operator"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_messages_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_messages")),
    )
    op.create_index("ix_ticket_messages_ticket_id_id", "ticket_messages", ["ticket_id", "id"])
    op.create_index("ix_ticket_messages_created_at", "ticket_messages", ["created_at"])
    op.create_table(
        "canned_answers",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_answers")),
        sa.UniqueConstraint("title", name=op.f("uq_canned_answers_title")),
    )
    op.create_table(
        "ticket_resolutions",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("ticket_id", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Numeric(precision=20, scale=8), nullable=True),
        sa.Column("operator", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "action IN ('no_action', 'resend', 'refund', 'complete')",
            name=op.f("ck_ticket_resolutions_action"),
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_resolutions_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_resolutions")),
        sa.UniqueConstraint("ticket_id", "order_id", name="uq_ticket_resolutions_ticket_order"),
    )
    op.add_column("orders", sa.Column("review_ticket_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        op.f("fk_orders_review_ticket_id_tickets"),
        "orders",
        "tickets",
        ["review_ticket_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_index(
        "ix_orders_under_review",
        "orders",
        ["user_id", "service_id", "link_normalized"],
        postgresql_where=sa.text("review_ticket_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_orders_under_review",
        table_name="orders",
        postgresql_where=sa.text("review_ticket_id IS NOT NULL"),
    )
    op.drop_constraint(op.f("fk_orders_review_ticket_id_tickets"), "orders", type_="foreignkey")
    op.drop_column("orders", "review_ticket_id")
    op.drop_table("ticket_resolutions")
    op.drop_table("canned_answers")
    op.drop_index("ix_ticket_messages_created_at", table_name="ticket_messages")
    op.drop_index("ix_ticket_messages_ticket_id_id", table_name="ticket_messages")
    op.drop_table("ticket_messages")
    op.drop_index("ix_tickets_created_at", table_name="tickets")
    op.drop_index("ix_tickets_status_waiting", table_name="tickets")
    op.drop_index("ix_tickets_user_id_id", table_name="tickets")
    op.drop_table("tickets")
