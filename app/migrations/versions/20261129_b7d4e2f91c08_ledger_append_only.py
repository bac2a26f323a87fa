"""ledger_entries append-only in the database

Revision ID: b7d4e2f91c08
Revises: a3e1c9d20b17
Create Date: 2026-11-29 09:05:00.000000

A trigger refuses every UPDATE and DELETE of a ledger entry, whoever sends it. The one
exception is the retention purge (app.ledger.service.purge_entries), which sets the
transaction-local setting `smm.ledger_purge = 'on'` around its DELETE and writes an audit
entry; the setting never allows an UPDATE.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b7d4e2f91c08"
down_revision: str | None = "a3e1c9d20b17"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION ledger_entries_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP = 'DELETE' AND current_setting('smm.ledger_purge', true) = 'on' THEN
            RETURN OLD;  -- the audited retention purge
          END IF;
          RAISE EXCEPTION 'ledger entries are append-only: % of entry % refused', TG_OP, OLD.id
            USING ERRCODE = 'restrict_violation',
                  HINT = 'correct a balance with a new adjustment entry';
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries"
        " FOR EACH ROW EXECUTE FUNCTION ledger_entries_append_only()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER ledger_entries_append_only ON ledger_entries")
    op.execute("DROP FUNCTION ledger_entries_append_only()")
