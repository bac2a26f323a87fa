"""The only place in Python where money moves.

Three statements of the orders domain restate `debit` and `credit` in SQL, for speed:
app/orders/sql.py ADD_ORDER (an order's charge), ADD_ORDERS (the charges of one user's
adds placed together: a group, a mass order) and WITHDRAW (the refund of orders never
sent). Each is this module's twin, kept equal to it by a named test
(tests/test_sql_twins_api.py: test_add_order_sql_debits_as_the_ledgers_debit_does,
test_withdraw_sql_credits_as_the_ledgers_credit_does; tests/test_group_commit.py:
test_add_orders_sql_is_the_twin_of_place_order_one_by_one); nothing else writes a
balance.

Every balance change writes one immutable ledger entry and updates the cached balance in
the same transaction. Debits are conditional updates, so concurrent charges can never
overdraw; unique indexes make a second charge or refund of one order impossible.

Lock order (docs/architecture.md): users before orders, each set by ascending id. A
transaction that touches more than one user locks them all first with `lock_users`; the
single-row locks taken here (`debit`, `credit`, `adjust`) are then no-ops or the one user
of the transaction.

Entries are immutable in the database too: a trigger refuses any UPDATE or DELETE of
ledger_entries. The only deletion is `purge_entries`, the retention purge of erased users,
which turns on the transaction-local setting PURGE_SETTING for its one statement.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import USER_ACTIVE, User
from app.errors import NotEnoughFunds, NotFound
from app.ledger.models import LedgerEntry
from app.money import plain


async def lock_users(session: AsyncSession, user_ids: Iterable[int]) -> list[int]:
    """Lock these users' rows in ascending id order (the global lock order: users before
    orders, each by ascending id); the ids found. Locking a row the transaction already
    holds is a no-op, so a caller may lock a user again."""
    ids = sorted(set(user_ids))
    if not ids:
        return []
    # FOR NO KEY UPDATE, as an UPDATE of the row takes (and `_lock_balance`): it excludes
    # other lockers, but not the key-share locks that inserts referring to the user take
    # (an order, a ledger entry), so an `add` that inserted its order and then debits never
    # waits in a circle with a refund of the same user.
    locked = select(User.id).where(User.id.in_(ids)).order_by(User.id)
    return list(await session.scalars(locked.with_for_update(key_share=True)))


@dataclass(frozen=True)
class Movement:
    entry_id: int
    amount: Decimal
    balance_after: Decimal


async def debit(
    session: AsyncSession,
    *,
    user_id: int,
    amount: Decimal,
    kind: str,
    reason: str,
    order_id: int | None = None,
    operator: str | None = None,
    idempotency_key: str | None = None,
    require_active: bool = True,
) -> Movement:
    """Take `amount` (> 0) from a balance, or raise NotEnoughFunds.

    The conditional UPDATE locks the user row and checks the floor in one statement, so
    two concurrent debits cannot both spend the same money.
    """
    if amount <= 0:
        raise ValueError("debit amount must be positive")
    conditions = [User.id == user_id, User.balance - amount >= -User.credit_limit]
    if require_active:
        conditions.append(User.status == USER_ACTIVE)
    balance = await session.scalar(
        update(User)
        .where(*conditions)
        .values(balance=User.balance - amount)
        .returning(User.balance)
    )
    if balance is None:
        raise NotEnoughFunds()
    entry_id = await session.scalar(
        insert(LedgerEntry)
        .values(
            user_id=user_id,
            kind=kind,
            amount=-amount,
            balance_after=balance,
            reason=reason,
            order_id=order_id,
            operator=operator,
            idempotency_key=idempotency_key,
        )
        .returning(LedgerEntry.id)
    )
    assert entry_id is not None
    return Movement(entry_id, -amount, balance)


async def credit(
    session: AsyncSession,
    *,
    user_id: int,
    amount: Decimal,
    kind: str,
    reason: str,
    order_id: int | None = None,
    payment_ref: str | None = None,
    operator: str | None = None,
    idempotency_key: str | None = None,
) -> Movement | None:
    """Add `amount` (> 0) to a balance; None when this movement already happened.

    Uniqueness (idempotency key, one refund per order) is decided by the database: the
    entry is inserted first with ON CONFLICT DO NOTHING, and the balance moves only if
    the insert took place.
    """
    if amount <= 0:
        raise ValueError("credit amount must be positive")
    balance = await _lock_balance(session, user_id)
    new_balance = balance + amount
    stmt = (
        pg_insert(LedgerEntry)
        .values(
            user_id=user_id,
            kind=kind,
            amount=amount,
            balance_after=new_balance,
            reason=reason,
            order_id=order_id,
            payment_ref=payment_ref,
            operator=operator,
            idempotency_key=idempotency_key,
        )
        .on_conflict_do_nothing()
        .returning(LedgerEntry.id)
    )
    entry_id = await session.scalar(stmt)
    if entry_id is None:
        return None
    await session.execute(update(User).where(User.id == user_id).values(balance=new_balance))
    return Movement(entry_id, amount, new_balance)


async def adjust(
    session: AsyncSession,
    *,
    user_id: int,
    amount: Decimal,
    kind: str,
    reason: str,
    operator: str | None = None,
    allow_negative: bool = False,
) -> Movement:
    """An operator's signed change. Negative amounts respect the floor unless allowed."""
    if amount == 0:
        raise ValueError("adjustment must not be zero")
    balance = await _lock_balance(session, user_id)
    user_floor = await session.scalar(select(-User.credit_limit).where(User.id == user_id))
    new_balance = balance + amount
    if amount < 0 and not allow_negative and new_balance < (user_floor or Decimal(0)):
        raise NotEnoughFunds()
    entry_id = await session.scalar(
        insert(LedgerEntry)
        .values(
            user_id=user_id,
            kind=kind,
            amount=amount,
            balance_after=new_balance,
            reason=reason,
            operator=operator,
        )
        .returning(LedgerEntry.id)
    )
    assert entry_id is not None
    await session.execute(update(User).where(User.id == user_id).values(balance=new_balance))
    return Movement(entry_id, amount, new_balance)


async def list_entries(
    session: AsyncSession,
    *,
    limit: int,
    offset: int,
    user_id: int | None = None,
    kind: str | None = None,
    order_id: int | None = None,
    before_id: int | None = None,
) -> list[LedgerEntry]:
    """Entries, newest first, filtered; `before_id` is a cursor (older entries only)."""
    stmt = select(LedgerEntry).order_by(LedgerEntry.id.desc()).limit(limit).offset(offset)
    if user_id is not None:
        stmt = stmt.where(LedgerEntry.user_id == user_id)
    if kind:
        stmt = stmt.where(LedgerEntry.kind == kind)
    if order_id is not None:
        stmt = stmt.where(LedgerEntry.order_id == order_id)
    if before_id is not None:
        stmt = stmt.where(LedgerEntry.id < before_id)
    return list(await session.scalars(stmt))


async def _lock_balance(session: AsyncSession, user_id: int) -> Decimal:
    balance = await session.scalar(
        select(User.balance).where(User.id == user_id).with_for_update(key_share=True)
    )
    if balance is None:
        raise NotFound("User not found")
    return balance


# The switch the append-only trigger honours, for DELETE only (see the migration
# "ledger_entries append-only in the database").
PURGE_SETTING = "smm.ledger_purge"


async def purge_entries(session: AsyncSession, user_ids: list[int]) -> int:
    """Delete every ledger entry of `user_ids` (retention ended); the number deleted.

    The one path past the append-only trigger: the setting is local to the transaction
    and switched off again right after the statement. The caller audits the purge.
    """
    switch = text("SELECT set_config(:name, :value, true)")
    await session.execute(switch, {"name": PURGE_SETTING, "value": "on"})
    try:
        result = await session.execute(delete(LedgerEntry).where(LedgerEntry.user_id.in_(user_ids)))
    finally:
        await session.execute(switch, {"name": PURGE_SETTING, "value": "off"})
    return cast(CursorResult[Any], result).rowcount


@dataclass
class InvariantReport:
    ok: bool = True
    checked_users: int = 0
    checked_orders: int = 0
    violations: list[dict[str, object]] = field(default_factory=list)

    def add(self, rule: str, **detail: object) -> None:
        self.ok = False
        self.violations.append({"rule": rule, **detail})


_CHECKS: dict[str, str] = {
    # balance = sum of the user's entries
    "balance_equals_ledger_sum": """
        SELECT u.id AS user_id, u.balance, COALESCE(s.total, 0) AS ledger_sum
        FROM users u
        LEFT JOIN (SELECT user_id, SUM(amount) AS total FROM ledger_entries GROUP BY user_id) s
          ON s.user_id = u.id
        WHERE u.balance <> COALESCE(s.total, 0)
    """,
    # balance >= 0 unless credit was granted
    "balance_not_below_floor": """
        SELECT id AS user_id, balance, credit_limit FROM users WHERE balance < -credit_limit
    """,
    # each entry's balance_after chains from the previous one
    "balance_after_chain": """
        SELECT user_id, id AS entry_id, balance_after, running FROM (
          SELECT user_id, id, balance_after,
                 SUM(amount) OVER (PARTITION BY user_id ORDER BY id) AS running
          FROM ledger_entries) t
        WHERE balance_after <> running
    """,
    # charged − refunded ≥ 0 per order, and the order's figures match its entries
    "order_money_matches_ledger": """
        SELECT o.id AS order_id, o.charge, o.refunded,
               COALESCE(c.charged, 0) AS charged, COALESCE(r.refunded, 0) AS ledger_refunded
        FROM orders o
        LEFT JOIN (SELECT order_id, -SUM(amount) AS charged FROM ledger_entries
                   WHERE kind = 'charge' GROUP BY order_id) c ON c.order_id = o.id
        LEFT JOIN (SELECT COALESCE(o2.parent_id, o2.id) AS root_id, SUM(le.amount) AS refunded
                   FROM ledger_entries le JOIN orders o2 ON o2.id = le.order_id
                   WHERE le.kind = 'refund' GROUP BY COALESCE(o2.parent_id, o2.id)) r
          ON r.root_id = o.id
        WHERE o.parent_id IS NULL AND (
              COALESCE(c.charged, 0) <> o.charge
           OR COALESCE(r.refunded, 0) <> o.refunded
           OR COALESCE(c.charged, 0) < COALESCE(r.refunded, 0))
    """,
}


async def check_invariants(session: AsyncSession) -> InvariantReport:
    """Verify SPEC §3 over the whole database (tests and GET /admin/v1/ledger/check)."""
    report = InvariantReport()
    report.checked_users = int(await session.scalar(select(func.count(User.id))) or 0)
    report.checked_orders = int(
        await session.scalar(text("SELECT count(*) FROM orders WHERE parent_id IS NULL")) or 0
    )
    for rule, sql in _CHECKS.items():
        rows = (await session.execute(text(sql))).mappings().all()
        for row in rows[:50]:
            report.add(rule, **{k: _plain(v) for k, v in row.items()})
    return report


def _plain(value: object) -> object:
    return plain(value) if isinstance(value, Decimal) else value
