"""users.email unique whatever its case, stored lower-cased

Revision ID: a3e1c9d20b17
Revises: a7c3e51d0b92
Create Date: 2026-11-29 09:00:00.000000

Existing emails are lower-cased. If two users share an email that differs only by case,
the migration stops and names them (an operator decides which account keeps the address:
merging or renaming accounts is not something a migration should guess).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a3e1c9d20b17"
down_revision: str | None = "a7c3e51d0b92"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    clashes = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT lower(email) AS email, array_agg(id ORDER BY id) AS ids FROM users"
                " WHERE email IS NOT NULL GROUP BY lower(email) HAVING count(*) > 1"
            )
        )
        .all()
    )
    if clashes:
        listed = "; ".join(f"{row.email}: users {list(row.ids)}" for row in clashes)
        raise RuntimeError(
            "users share an email differing only by case; give each a distinct email "
            f"(PATCH /admin/v1/users/{{id}}) and migrate again: {listed}"
        )
    op.execute("UPDATE users SET email = lower(email) WHERE email <> lower(email)")
    op.create_index("uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_users_email_lower", table_name="users")
