"""notify the `smm_pricing` channel when what `services` shows may have changed

Every change that moves the catalog version (categories, services, custom rates), a key
revoked or removed, or a user's status or discount changed: API processes keep who a key
is and what it pays in memory while nothing was notified (app/changefeed.py).

Revision ID: a7c3e9d15b28
Revises: f1b3d5e7a902
Create Date: 2026-11-29 12:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a7c3e9d15b28"
down_revision: str | None = "f1b3d5e7a902"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATEMENT_TRIGGERS = {
    "catalog_version_notify_pricing": "AFTER UPDATE OR TRUNCATE ON catalog_version",
    "api_keys_notify_pricing": "AFTER UPDATE OR DELETE OR TRUNCATE ON api_keys",
    "users_gone_notify_pricing": "AFTER DELETE OR TRUNCATE ON users",
}


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION notify_pricing() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          PERFORM pg_notify('smm_pricing', '');
          RETURN NULL;
        END $$
        """
    )
    for name, when in STATEMENT_TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {when} FOR EACH STATEMENT EXECUTE FUNCTION notify_pricing()"
        )
    # Row level, for the two columns that matter: the balance of every order moves the
    # users rows too, and must not wake anyone.
    op.execute(
        "CREATE TRIGGER users_notify_pricing AFTER UPDATE OF status, discount_percent ON users"
        " FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status"
        " OR OLD.discount_percent IS DISTINCT FROM NEW.discount_percent)"
        " EXECUTE FUNCTION notify_pricing()"
    )


def downgrade() -> None:
    for name, when in (*STATEMENT_TRIGGERS.items(), ("users_notify_pricing", " ON users")):
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {when.rsplit(' ON ', 1)[1]}")
    op.execute("DROP FUNCTION IF EXISTS notify_pricing()")
