"""Accounts across domains: opening one with a first deposit, and blocking one
(chargeback, fraud): keys stop working, active orders are canceled, and the balance is
forfeited through the ledger, never silently overwritten."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service as accounts
from app.accounts.models import USER_BLOCKED, User
from app.accounts.service import IssuedKey
from app.db import after_commit, utcnow
from app.errors import NotFound
from app.jobs import JobQueue
from app.ledger import service as ledger
from app.orders.models import ACTIVE_STATUSES, Order
from app.orders.service import OrderNotCancelable, refresh_parent, stop_order
from app.payments import service as payments
from app.settings import Settings


@dataclass(frozen=True)
class OpenedAccount:
    user: User
    key: IssuedKey


async def open_account(
    session: AsyncSession,
    settings: Settings,
    *,
    email: str,
    name: str | None,
    currency: str,
    credit_limit: Decimal,
    referral_code: str | None,
    initial_balance: Decimal,
    operator: str,
) -> OpenedAccount:
    """A new user with an API key and, if asked, a first deposit (rewarding the referrer)."""
    user = await accounts.create_user(
        session,
        email=email,
        name=name,
        currency=currency,
        credit_limit=credit_limit,
        referral_code=referral_code,
    )
    issued = await accounts.issue_key(session, user.id)
    if initial_balance > 0:
        await payments.manual_topup(
            session,
            settings,
            user_id=user.id,
            amount=initial_balance,
            reason="Initial balance",
            operator=operator,
        )
    await session.refresh(user)
    return OpenedAccount(user, issued)


@dataclass
class BlockResult:
    withdrawn: list[int] = field(default_factory=list)  # canceled and refunded now
    cancel_requested: list[int] = field(default_factory=list)  # sent: canceled upstream
    forfeited: Decimal = Decimal(0)


async def block_account(
    session: AsyncSession, jobs: JobQueue, user_id: int, *, operator: str, reason: str
) -> BlockResult:
    """Block the account, and ask the providers to cancel its sent orders once the block
    is committed (each cancel relayed by its own job)."""
    result = await block_user(session, user_id, operator=operator, reason=reason)
    for order_id in result.cancel_requested:
        after_commit(session, partial(jobs.relay_cancel, order_id))
    return result


async def block_user(
    session: AsyncSession, user_id: int, *, operator: str, reason: str
) -> BlockResult:
    result = BlockResult()
    # The user row first, then their orders by ascending id: the global lock order.
    user = await session.scalar(select(User).where(User.id == user_id).with_for_update())
    if user is None:
        raise NotFound("User not found")
    orders = list(
        await session.scalars(
            select(Order)
            .where(Order.user_id == user_id, Order.status.in_(ACTIVE_STATUSES))
            .order_by(Order.id)
            .with_for_update()
        )
    )
    parents = set()
    for order in orders:
        if order.upstream_state == "dripfeed":
            parents.add(order.id)
            continue
        try:
            if await stop_order(session, order.id):
                result.cancel_requested.append(order.id)
            else:
                result.withdrawn.append(order.id)
        except OrderNotCancelable:
            continue
        if order.parent_id is not None:
            parents.add(order.parent_id)
    for parent_id in sorted(parents):
        await refresh_parent(session, parent_id)
    # Blocked only now, so the refunds above land before the forfeit takes the whole
    # balance; the user row is locked, no order can slip in meanwhile.
    await session.execute(
        update(User).where(User.id == user_id).values(status=USER_BLOCKED, blocked_at=utcnow())
    )
    await forfeit_balance(session, user_id, operator=operator, reason=reason, result=result)
    return result


async def forfeit_balance(
    session: AsyncSession, user_id: int, *, operator: str, reason: str, result: BlockResult
) -> None:
    balance = await session.scalar(select(User.balance).where(User.id == user_id))
    if balance is not None and balance > 0:
        await ledger.debit(
            session,
            user_id=user_id,
            amount=balance,
            kind="forfeit",
            reason=f"Forfeit on block: {reason}",
            operator=operator,
            require_active=False,
        )
        result.forfeited += balance
