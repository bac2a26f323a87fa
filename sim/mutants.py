"""Known bugs, planted one at a time to show the simulation catches them.

Each is planted in the simulation's process (monkeypatching) or in the throwaway
database's schema, never in a source file, and undone afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.db import Database
from app.flows import sync
from app.flows.relay import recording as relay_recording
from app.ledger import service as ledger
from app.ledger.models import LedgerEntry
from app.orders import service as orders
from app.orders.models import FINAL_STATUSES, IN_PROGRESS, Order
from app.providers.client import ProviderError, ProviderTransient, ProviderUnknownOutcome

Undo = Callable[[], None]


async def _debit_without_guard(
    session: AsyncSession,
    *,
    user_id: int,
    amount: Decimal,
    kind: str,
    reason: str,
    order_id: int | None = None,
    **_: Any,
) -> ledger.Movement:
    """ledger.debit with its balance guard dropped."""
    balance = await session.scalar(
        update(User)
        .where(User.id == user_id)
        .values(balance=User.balance - amount)
        .returning(User.balance)
    )
    assert balance is not None
    entry = LedgerEntry(
        user_id=user_id,
        kind=kind,
        amount=-amount,
        balance_after=balance,
        reason=reason,
        order_id=order_id,
    )
    session.add(entry)
    await session.flush()
    return ledger.Movement(entry.id, -amount, balance)


def _patch(target: object, name: str, value: object) -> Undo:
    original = getattr(target, name)
    setattr(target, name, value)
    return lambda: setattr(target, name, original)


async def plant_debit_guard(db: Database) -> Undo:
    """The debit's balance guard dropped: the conditional update and the CHECK behind it."""
    async with db.transaction() as session:
        await session.execute(text("ALTER TABLE users DROP CONSTRAINT ck_users_balance_floor"))
    return _patch(ledger, "debit", _debit_without_guard)


async def plant_refund_index(db: Database) -> Undo:
    """The unique index that makes a second refund of one order impossible, dropped."""
    async with db.transaction() as session:
        await session.execute(text("DROP INDEX IF EXISTS uq_ledger_entries_order_refund"))
    return lambda: None  # the database is thrown away


async def plant_resend_unknown(db: Database) -> Undo:
    """An unknown outcome of `add` treated as a refusal to retry: the order is resent."""
    original = relay_recording._record_failure

    async def resend(db_: Database, settings: Any, order: Any, exc: ProviderError) -> Any:
        if isinstance(exc, ProviderUnknownOutcome):
            exc = ProviderTransient(exc.message)
        return await original(db_, settings, order, exc)

    return _patch(relay_recording, "_record_failure", resend)


async def plant_report_after_final(db: Database) -> Undo:
    """A status report applied to an order that is already final."""
    original = orders.apply_status

    async def apply(session: AsyncSession, order_id: int, report: Any, *, source: str) -> bool:
        await session.execute(
            update(Order)
            .where(Order.id == order_id, Order.status.in_(FINAL_STATUSES))
            .values(status=IN_PROGRESS)
        )
        return await original(session, order_id, report, source=source)

    undo_orders = _patch(orders, "apply_status", apply)
    undo_sync = _patch(sync, "apply_status", apply)

    def undo() -> None:
        undo_sync()
        undo_orders()

    return undo


async def plant_lock_order(db: Database) -> Undo:
    """Inconsistent lock order again: a status page refunds inside its own transaction,
    locking each order's user as its orders come, so two pages meeting two users in
    opposite orders wait on each other."""

    async def apply_batch(
        db_: Database,
        rows: Any,
        answers: Any,
        result: sync.SyncResult,
        provider_id: int | None = None,
    ) -> None:
        async with db_.transaction() as session:
            after = await sync._apply_batch(session, rows, answers, result, provider_id)
            for order_id, report in after.refunding:
                if await orders.apply_status(session, order_id, report, source="provider"):
                    result.changed += 1
            for parent_id in sorted(after.parents):
                await orders.refresh_parent(session, parent_id)

    return _patch(sync, "apply_batch", apply_batch)


MUTANTS = {
    "debit-guard": plant_debit_guard,
    "refund-index": plant_refund_index,
    "resend-unknown": plant_resend_unknown,
    "report-after-final": plant_report_after_final,
    "lock-order": plant_lock_order,
}
