"""payments failed status: an invoice the gateway refused to create is failed, not pending

Revision ID: a34d523aaf04
Revises: dc93bf828de8
Create Date: 2026-12-06 03:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a34d523aaf04"
down_revision: str | None = "dc93bf828de8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint(op.f("ck_payments_status"), "payments", type_="check")
    op.create_check_constraint(
        op.f("ck_payments_status"), "payments", "status IN ('pending', 'paid', 'failed')"
    )


def downgrade() -> None:
    # A failed invoice was never payable: it goes back to what it was shown as before.
    op.execute("UPDATE payments SET status = 'pending' WHERE status = 'failed'")
    op.drop_constraint(op.f("ck_payments_status"), "payments", type_="check")
    op.create_check_constraint(
        op.f("ck_payments_status"), "payments", "status IN ('pending', 'paid')"
    )
