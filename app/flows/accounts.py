"""Accounts across domains: opening one with a first deposit, and blocking one
(chargeback, fraud): keys stop working, active orders are canceled, and the balance is
forfeited through the ledger, never silently overwritten.

A chargeback (a payment disputed or reversed, ToS 4.6) is one command for the operator's
action and the gateways' notifications alike: it blocks, forfeits and cancels once per
user (the chargebacks table's unique user is the guard: a repeat answers the first
result), cancels the disputed deposit's receipt, and writes its audit entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service as accounts
from app.accounts.models import USER_BLOCKED, User
from app.accounts.service import IssuedKey
from app.db import after_commit, utcnow
from app.errors import NotFound
from app.flows.schemas import ChargebackOut
from app.http.audit import Auditor
from app.jobs import JobQueue
from app.ledger import service as ledger
from app.orders.models import ACTIVE_STATUSES, Order
from app.orders.service import OrderNotCancelable, refresh_parent, stop_order
from app.payments import service as payments
from app.payments.models import Chargeback, Payment
from app.receipts import service as receipts
from app.referrals import service as referrals
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


class ChargebackInvoiceNotFound(NotFound):
    http_status = 404
    message = "Invoice not found for this user"


@dataclass(frozen=True)
class ChargebackResult:
    chargeback_id: int
    user_id: int
    invoice_id: int | None
    reason: str
    source: str
    forfeited: Decimal
    withdrawn: list[int]
    cancel_requested: list[int]
    receipt: str | None  # the disputed deposit's receipt status after it
    at: datetime
    repeated: bool


def _result(row: Chargeback, *, repeated: bool) -> ChargebackResult:
    return ChargebackResult(
        chargeback_id=row.id,
        user_id=row.user_id,
        invoice_id=row.payment_id,
        reason=row.reason,
        source=row.source,
        forfeited=row.forfeited,
        withdrawn=list(row.withdrawn),
        cancel_requested=list(row.cancel_requested),
        receipt=row.receipt_status,
        at=row.created_at,
        repeated=repeated,
    )


async def charge_back(
    session: AsyncSession,
    jobs: JobQueue,
    settings: Settings,
    audit: Auditor,
    user_id: int,
    *,
    reason: str,
    invoice_id: int | None = None,
) -> ChargebackResult:
    """A payment of the user was disputed or reversed: block the account, forfeit the
    balance and cancel the active orders with their refunds (`block_account`), cancel the
    disputed deposit's receipt, and take back the referral rewards its deposits earned
    within REFERRAL_REVERSAL_DAYS; once per user, a repeat answering the first result."""
    found = (
        await session.execute(select(User.id, User.referred_by_id).where(User.id == user_id))
    ).first()
    if found is None:
        raise NotFound("User not found")
    # The referrer's rewards may be taken back: both users locked now, in the global order
    # (ascending ids), before anything below locks either of them alone.
    await ledger.lock_users(
        session, [user_id] + ([found.referred_by_id] if found.referred_by_id else [])
    )
    payment = None
    if invoice_id is not None:
        payment = await session.get(Payment, invoice_id)
        if payment is None or payment.user_id != user_id:
            raise ChargebackInvoiceNotFound()
    made = await session.scalar(
        insert(Chargeback)
        .values(user_id=user_id, payment_id=invoice_id, reason=reason[:500], source=audit.actor)
        .on_conflict_do_nothing(index_elements=["user_id"])
        .returning(Chargeback.id)
    )
    if made is None:
        first = await session.scalar(select(Chargeback).where(Chargeback.user_id == user_id))
        assert first is not None
        return _result(first, repeated=True)
    blocked = await block_account(
        session, jobs, user_id, operator=audit.actor, reason=f"chargeback: {reason}"
    )
    row = await session.get(Chargeback, made)
    assert row is not None
    if payment is not None and payment.ledger_entry_id is not None:
        row.receipt_status = await receipts.cancel_for_deposit(
            session, deposit_entry_id=payment.ledger_entry_id
        )
    if settings.referral_reversal_days > 0:
        await referrals.take_back_reversed(
            session,
            user_id,
            days=settings.referral_reversal_days,
            operator=audit.actor,
            reason=f"deposit reversed: {reason}"[:300],
        )
    row.forfeited = blocked.forfeited
    row.withdrawn, row.cancel_requested = blocked.withdrawn, blocked.cancel_requested
    await session.flush()
    await session.refresh(row)
    result = _result(row, repeated=False)
    await audit("user.chargeback", "user", user_id, after=ChargebackOut.model_validate(result))
    return result
