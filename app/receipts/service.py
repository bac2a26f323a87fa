"""Receipts of credited deposits, by the fiscal backend FISCAL_BACKEND names.

- `none`: no receipt.
- `self-employed`: a `pending` receipt is written in the transaction that credits the
  deposit (the ledger entry is unique here, so a deposit has one receipt whatever retries
  happen) and registered with the tax service by the delivery job, outside any
  transaction: the attempt is claimed first (attempts + 1, the next attempt pushed past
  it, committed), then the tax service is asked, then the outcome is recorded. An attempt
  after one whose outcome is unknown (an error, a timeout, a worker killed mid-way) first
  looks the income up at the tax service by its name (carrying the receipt's number) and
  amount, and only registers it when it is not there: one income per deposit.
- `gateway`: the 54-FZ receipt goes to Robokassa or YooKassa with the payment (the gateway
  registers it); the deposit's receipt row says so.

A reversed deposit (chargeback, refund) cancels its receipt: one never sent is cancelled
at once, a registered one (or one whose outcome is unknown) is cancelled at the tax service
by the same job. Once registered, the customer gets the link by mail.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

import httpx
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.customers.models import CustomerLogin
from app.db import Database, utcnow
from app.mail import service as mail
from app.receipts.mails import compose
from app.receipts.models import (
    BACKEND_GATEWAY,
    BACKEND_SELF_EMPLOYED,
    RECEIPT_CANCEL_PENDING,
    RECEIPT_CANCELLED,
    RECEIPT_DUE,
    RECEIPT_FAILED,
    RECEIPT_GATEWAY,
    RECEIPT_PENDING,
    RECEIPT_REGISTERED,
    Receipt,
)
from app.receipts.npd import NpdClient, NpdError
from app.settings import Settings

log = logging.getLogger(__name__)

NPD_CURRENCY = "RUB"
# Gateways that register the receipt themselves in `gateway` mode.
FISCAL_GATEWAYS = ("robokassa", "yookassa")
MAX_BACKOFF = timedelta(days=1)
BATCH = 50


def backoff(settings: Settings, attempts: int) -> timedelta:
    seconds = settings.npd_retry_seconds * 2 ** max(0, min(attempts - 1, 30))
    return min(MAX_BACKOFF, timedelta(seconds=seconds))


def item_name(settings: Settings, receipt_id: int) -> str:
    """The service named on the receipt: it carries the receipt's number, which is how a
    registered income is found again after an attempt with an unknown outcome."""
    return f"{settings.fiscal_item_name} №{receipt_id}"


async def create_for_deposit(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: int,
    deposit_entry_id: int,
    amount: Decimal,
    currency: str,
    payment_id: int | None = None,
    gateway: str | None = None,
) -> int | None:
    """The deposit's receipt, in the transaction that credits it (None: no receipt, or
    one exists already)."""
    if settings.fiscal_backend == "none":
        return None
    values: dict[str, object] = {
        "user_id": user_id,
        "deposit_entry_id": deposit_entry_id,
        "payment_id": payment_id,
        "amount": amount,
        "currency": currency,
    }
    if settings.fiscal_backend == "gateway":
        values["backend"] = BACKEND_GATEWAY
        if gateway in FISCAL_GATEWAYS:
            values["status"] = RECEIPT_GATEWAY
        else:
            values["status"] = RECEIPT_FAILED
            values["last_error"] = "this deposit did not pass through a fiscal gateway"
    else:
        values["backend"] = BACKEND_SELF_EMPLOYED
        values["status"] = RECEIPT_PENDING
        if currency != NPD_CURRENCY:
            values["status"] = RECEIPT_FAILED
            values["last_error"] = f"the tax service takes roubles, the deposit is {currency}"
    made = await session.scalar(
        insert(Receipt)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["deposit_entry_id"])
        .returning(Receipt.id)
    )
    return None if made is None else int(made)


async def cancel_for_deposit(session: AsyncSession, *, deposit_entry_id: int) -> str | None:
    """The deposit was reversed: its receipt is cancelled (at the tax service by the job
    when it may have been registered there). The receipt's new status, None without one."""
    row = await session.scalar(
        select(Receipt).where(Receipt.deposit_entry_id == deposit_entry_id).with_for_update()
    )
    if row is None:
        return None
    if row.backend == BACKEND_SELF_EMPLOYED:
        if row.status == RECEIPT_PENDING and row.attempts == 0:
            row.status, row.cancelled_at = RECEIPT_CANCELLED, utcnow()
        elif row.status in (RECEIPT_PENDING, RECEIPT_REGISTERED):
            row.status, row.next_attempt_at = RECEIPT_CANCEL_PENDING, utcnow()
    await session.flush()
    return row.status


async def for_payment(session: AsyncSession, payment_id: int) -> Receipt | None:
    found: Receipt | None = await session.scalar(
        select(Receipt).where(Receipt.payment_id == payment_id)
    )
    return found


async def links_of(session: AsyncSession, payment_ids: list[int]) -> dict[int, str]:
    """The receipt links of these invoices (those registered)."""
    if not payment_ids:
        return {}
    rows = await session.execute(
        select(Receipt.payment_id, Receipt.url).where(
            Receipt.payment_id.in_(payment_ids),
            Receipt.status == RECEIPT_REGISTERED,
            Receipt.url.is_not(None),
        )
    )
    return {int(r.payment_id): str(r.url) for r in rows}


@dataclass(frozen=True)
class ReceiptSearch:
    user_id: int | None = None
    status: str | None = None
    payment_id: int | None = None


async def search(
    session: AsyncSession, where: ReceiptSearch, *, limit: int, offset: int
) -> list[Receipt]:
    stmt = select(Receipt).order_by(Receipt.id.desc()).limit(limit).offset(offset)
    if where.user_id is not None:
        stmt = stmt.where(Receipt.user_id == where.user_id)
    if where.status is not None:
        stmt = stmt.where(Receipt.status == where.status)
    if where.payment_id is not None:
        stmt = stmt.where(Receipt.payment_id == where.payment_id)
    return list(await session.scalars(stmt))


# --- delivery -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A receipt as the attempt found it."""

    id: int
    status: str
    earlier_attempts: int
    amount: Decimal
    external_id: str | None
    operation_at: datetime


@dataclass
class DeliveryRun:
    registered: int = 0
    cancelled: int = 0
    failed: int = 0


async def _claim(db: Database, settings: Settings) -> Claimed | None:
    """The next due receipt, its attempt counted and the next one pushed past it before any
    request is sent (committed), so no other run takes it meanwhile."""
    async with db.transaction() as session:
        now = utcnow()
        row = await session.scalar(
            select(Receipt)
            .where(
                Receipt.backend == BACKEND_SELF_EMPLOYED,
                Receipt.status.in_(RECEIPT_DUE),
                Receipt.next_attempt_at <= now,
            )
            .order_by(Receipt.next_attempt_at, Receipt.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if row is None:
            return None
        claimed = Claimed(
            row.id, row.status, row.attempts, row.amount, row.external_id, row.operation_at
        )
        row.attempts += 1
        row.next_attempt_at = now + backoff(settings, row.attempts)
        return claimed


async def deliver_due(
    db: Database, http: httpx.AsyncClient, settings: Settings, mailer: mail.Mailer
) -> DeliveryRun:
    """Register and cancel the due receipts with the tax service (self-employed mode)."""
    run = DeliveryRun()
    if settings.fiscal_backend != "self-employed":
        return run
    try:
        client = NpdClient(http, settings)
    except NpdError as exc:
        log.error("receipts cannot be registered", extra={"reason": str(exc)})
        return run
    for _ in range(BATCH):
        claimed = await _claim(db, settings)
        if claimed is None:
            break
        try:
            if claimed.status == RECEIPT_PENDING:
                await _register(db, client, settings, mailer, claimed)
                run.registered += 1
            else:
                await _cancel(db, client, settings, claimed)
                run.cancelled += 1
        except NpdError as exc:
            run.failed += 1
            log.warning("receipt attempt failed", extra={"receipt": claimed.id, "reason": str(exc)})
            async with db.transaction() as session:
                await session.execute(
                    update(Receipt)
                    .where(Receipt.id == claimed.id)
                    .values(last_error=str(exc)[:500])
                )
    return run


async def _register(
    db: Database, client: NpdClient, settings: Settings, mailer: mail.Mailer, claimed: Claimed
) -> None:
    name = item_name(settings, claimed.id)
    found = None
    if claimed.earlier_attempts > 0:
        # An earlier attempt may have reached the tax service: never register twice.
        found = await client.find(name, claimed.amount, claimed.operation_at)
    receipt_uuid = found or await client.register(name, claimed.amount, claimed.operation_at)
    async with db.transaction() as session:
        row = await session.get(Receipt, claimed.id, with_for_update=True)
        assert row is not None
        row.external_id, row.url = receipt_uuid, client.receipt_url(receipt_uuid)
        row.registered_at, row.last_error = utcnow(), None
        if row.status == RECEIPT_CANCEL_PENDING:
            # Reversed while the request was out: cancel it now.
            row.next_attempt_at = utcnow()
            return
        row.status = RECEIPT_REGISTERED
        await _mail_link(session, mailer, row)


async def _cancel(db: Database, client: NpdClient, settings: Settings, claimed: Claimed) -> None:
    receipt_uuid = claimed.external_id
    if receipt_uuid is None and claimed.earlier_attempts > 0:
        receipt_uuid = await client.find(
            item_name(settings, claimed.id), claimed.amount, claimed.operation_at
        )
    if receipt_uuid is not None:
        await client.cancel(receipt_uuid, utcnow())
    async with db.transaction() as session:
        await session.execute(
            update(Receipt)
            .where(Receipt.id == claimed.id, Receipt.status == RECEIPT_CANCEL_PENDING)
            .values(
                status=RECEIPT_CANCELLED,
                cancelled_at=utcnow(),
                external_id=receipt_uuid,
                last_error=None,
            )
        )


async def _mail_link(session: AsyncSession, mailer: mail.Mailer, row: Receipt) -> None:
    found = (
        await session.execute(
            select(User.email, CustomerLogin.language)
            .outerjoin(CustomerLogin, CustomerLogin.user_id == User.id)
            .where(User.id == row.user_id)
        )
    ).first()
    if found is None or not found.email or row.url is None:
        return
    amount = f"{row.amount:.2f} {row.currency}"
    message = compose(found.language or "en", found.email, url=row.url, amount=amount)
    await mail.queue(session, mailer, message)
