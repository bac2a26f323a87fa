"""Invoices and their settlement: a gateway's confirmed payment credits the balance once.

An invoice is priced in its gateway's currency, so a configured gateway whose currency has
no conversion rate would refuse every deposit: `unpriced_gateways` names them with the fix,
and the panel refuses to start on them. An invoice the gateway refused to create is
`failed`, never a pending payment the customer could try to pay.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import User
from app.currencies.service import NoConversionRate, conversion_rate
from app.db import Database, utcnow
from app.errors import Conflict, DomainError, IncorrectRequest, NotFound
from app.ledger import service as ledger
from app.ledger.models import LedgerEntry
from app.legal import service as legal
from app.legal.models import ACTION_DEPOSIT
from app.money import format_money
from app.payments import gateways
from app.payments.models import (
    GATEWAYS,
    PAYMENT_FAILED,
    PAYMENT_PAID,
    Payment,
    PaymentNotification,
)
from app.receipts import service as receipts
from app.referrals.service import reward_deposit
from app.settings import Settings

log = logging.getLogger(__name__)

CENT = Decimal("0.01")
CREDIT_PLACES = Decimal("0.00000001")
# What is kept of a refused notification: anyone can send one, so it must not be able to
# grow the activity log by the size of the request body each time.
REFUSED_PAYLOAD_MAX_BYTES = 4096
REFUSED_KEY_MAX_CHARS = 64
REFUSED_VALUE_MAX_CHARS = 256
TRUNCATED_MARKER = "_truncated"


class GatewayUnavailable(DomainError):
    http_status = 422
    message = "Payment gateway is not available"


class DepositTooSmall(DomainError):
    """Below MIN_DEPOSIT; `minimum` is kept so that a page can show it in its own format."""

    http_status = 422

    def __init__(self, minimum: Decimal) -> None:
        super().__init__(f"Minimum deposit is {format_money(minimum)}")
        self.minimum = minimum


class IncorrectAmount(DomainError):
    http_status = 422
    message = "Incorrect amount"


AMOUNT_DIGITS = frozenset("0123456789")


def parse_amount(text: str | None) -> Decimal:
    """A deposit amount as the user typed it: ASCII digits with at most one decimal
    separator, a point or a comma (`5.5` and `5,5`, as Russian keyboards type it).
    `Decimal` alone would also take `５` (any Unicode digit), `1_000`, `1e3` or `Infinity`."""
    raw = (text or "").strip()
    if raw.count(",") == 1 and "." not in raw:
        raw = raw.replace(",", ".")
    whole, _, fraction = raw.partition(".")
    if not whole or not set(whole) <= AMOUNT_DIGITS or not set(fraction) <= AMOUNT_DIGITS:
        raise IncorrectAmount()
    if len(raw) > 30:
        raise IncorrectAmount()
    return Decimal(raw)


class PaymentRefUsed(Conflict):
    """A payment reference names one deposit: one user, one amount."""

    http_status = 409

    def __init__(self, payment_ref: str) -> None:
        super().__init__(
            f"payment_ref {payment_ref!r} was already used for another user or another amount"
        )


def gateway_currency(settings: Settings, gateway: str) -> str:
    currency: str = getattr(settings, f"{gateway}_currency")
    return currency.upper()


def configured(settings: Settings, gateway: str) -> bool:
    checks = {
        "robokassa": gateways.robokassa_configured,
        "freekassa": gateways.freekassa_configured,
        "yookassa": gateways.yookassa_configured,
    }
    check = checks.get(gateway)
    return check is not None and check(settings)


async def unpriced_gateways(session: AsyncSession, settings: Settings) -> list[str]:
    """One line per configured gateway whose currency converts at no known rate (from
    CURRENCY_RATES or set by an operator), naming the fix; empty when every one can price
    an invoice."""
    panel = settings.currency.upper()
    problems = []
    for gateway in GATEWAYS:
        if not configured(settings, gateway):
            continue
        currency = gateway_currency(settings, gateway)
        try:
            await conversion_rate(session, settings, currency)
        except NoConversionRate:
            problems.append(
                f"payment gateway {gateway} takes {currency}, which has no conversion rate "
                f"into {panel}: set CURRENCY_RATES ({panel} per unit, e.g. "
                f"""CURRENCY_RATES='{{"{currency}": "0.011"}}') or PUT """
                f"/admin/v1/currencies/{currency}"
            )
    return problems


async def create_invoice(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: int,
    gateway: str,
    amount: Decimal,
    entered_in: str | None = None,
) -> Payment:
    """A pending payment worth `amount` of the panel's currency, priced in the gateway's.

    The price is rounded up to the cent, so the balance never receives more than was paid.
    An amount entered in another currency (`entered_in`, e.g. RUB) is converted at the
    operator's rate and rounded down, so the credit never exceeds what is paid; entered in
    the gateway's own currency, it is the price itself.
    """
    if not configured(settings, gateway):
        raise GatewayUnavailable()
    if not amount.is_finite() or amount <= 0 or amount > Decimal(10) ** 9:
        raise IncorrectAmount()
    currency = gateway_currency(settings, gateway)
    rate = await conversion_rate(session, settings, currency)
    panel = settings.currency.upper()
    entered = (entered_in or panel).upper()
    if entered == panel:
        credit = amount.quantize(CREDIT_PLACES)
        price = (amount / rate).quantize(CENT, ROUND_UP)
    else:
        entered_rate = await conversion_rate(session, settings, entered)
        credit = (amount * entered_rate).quantize(CREDIT_PLACES, ROUND_DOWN)
        price = (
            amount.quantize(CENT, ROUND_UP)
            if entered == currency
            else (credit / rate).quantize(CENT, ROUND_UP)
        )
    if credit < settings.min_deposit:
        raise DepositTooSmall(settings.min_deposit)
    payment = Payment(
        user_id=user_id, gateway=gateway, amount=price, currency=currency, credit_amount=credit
    )
    session.add(payment)
    await session.flush()
    if gateway == "robokassa":
        payment.pay_url = gateways.robokassa_pay_url(settings, payment.id, payment.amount)
    elif gateway == "freekassa":
        payment.pay_url = gateways.freekassa_pay_url(settings, payment.id, payment.amount, currency)
    await session.flush()
    return payment


async def manual_topup(
    session: AsyncSession,
    settings: Settings,
    *,
    user_id: int,
    amount: Decimal,
    reason: str,
    operator: str,
    payment_ref: str | None = None,
) -> ledger.Movement | None:
    """An operator's deposit (bank transfer, cash…), rewarding the user's referrer.

    A `payment_ref` names one deposit across the panel: replaying it for the same user and
    amount returns None and credits nothing; reusing it for another user or another amount
    raises PaymentRefUsed (the operator mistyped a reference or an amount).
    """
    key = f"deposit:manual:{payment_ref}" if payment_ref else None
    movement = await ledger.credit(
        session,
        user_id=user_id,
        amount=amount,
        kind="deposit",
        reason=reason,
        payment_ref=payment_ref,
        operator=operator,
        idempotency_key=key,
    )
    if movement is None:
        assert payment_ref is not None and key is not None
        first = (
            await session.execute(
                select(LedgerEntry.user_id, LedgerEntry.amount).where(
                    LedgerEntry.idempotency_key == key
                )
            )
        ).one()
        if first.user_id != user_id or first.amount != amount:
            raise PaymentRefUsed(payment_ref)
    else:
        await reward_deposit(
            session,
            share=settings.referral_share,
            accrue=settings.affiliate_payouts != "balance",
            user_id=user_id,
            deposit_entry_id=movement.entry_id,
            amount=amount,
        )
        await receipts.create_for_deposit(
            session,
            settings,
            user_id=user_id,
            deposit_entry_id=movement.entry_id,
            amount=amount,
            currency=settings.currency.upper(),
        )
    return movement


def bounded_payload(
    payload: dict[str, Any], max_bytes: int = REFUSED_PAYLOAD_MAX_BYTES
) -> tuple[dict[str, Any], bool]:
    """A refused notification's payload as it is stored, and whether it was cut.

    Within `max_bytes` (as JSON) it is kept whole. Otherwise the leading fields that fit,
    each key and value cut short, plus a marker with the original size and field count.
    """
    try:
        size = len(json.dumps(payload, ensure_ascii=False, default=str).encode())
    except (ValueError, RecursionError):
        size = -1  # not even encodable: keep only the marker
    if 0 <= size <= max_bytes:
        return payload, False
    kept: dict[str, Any] = {}
    budget = max_bytes - 200  # room for the marker
    if size >= 0:
        for key, value in payload.items():
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            name, cut = str(key)[:REFUSED_KEY_MAX_CHARS], text[:REFUSED_VALUE_MAX_CHARS]
            cost = len(json.dumps({name: cut}, ensure_ascii=False).encode())
            if cost > budget:
                break
            kept[name] = cut
            budget -= cost
    kept[TRUNCATED_MARKER] = {"bytes": size, "fields": len(payload), "kept": len(kept)}
    return kept, True


async def open_invoice(
    db: Database,
    settings: Settings,
    http: httpx.AsyncClient,
    *,
    user_id: int,
    gateway: str,
    amount: str | None,
    entered_in: str | None = None,
    ip: str | None = None,
) -> Payment:
    """A deposit invoice as a user asks for it, on any front end: the gateway and the amount
    as typed (`parse_amount`; in `entered_in`, by default the panel's currency), the
    invoice committed with the acceptance of the legal texts in force (paying accepts
    them), then for YooKassa its payment created at the gateway outside any transaction
    and recorded."""
    gateway = (gateway or "").strip().lower()
    if gateway not in GATEWAYS:
        raise IncorrectRequest("Incorrect gateway")
    value = parse_amount(amount)
    async with db.transaction() as session:
        payment = await create_invoice(
            session, settings, user_id=user_id, gateway=gateway, amount=value, entered_in=entered_in
        )
        await legal.record(
            session, user_id, ACTION_DEPOSIT, ip=ip, reference=f"invoice:{payment.id}"
        )
        email = await session.scalar(select(User.email).where(User.id == user_id))
    if gateway == "yookassa":
        try:
            external_id, url = await gateways.yookassa_create(
                settings, http, payment.id, payment.amount, payment.currency, email
            )
        except gateways.Unavailable as exc:
            log.warning("YooKassa payment not created", extra={"reason": str(exc)})
            async with db.transaction() as session:
                row = await session.get(Payment, payment.id)
                assert row is not None
                row.status = PAYMENT_FAILED
            raise GatewayUnavailable() from exc
        async with db.transaction() as session:
            row = await session.get(Payment, payment.id)
            assert row is not None
            row.external_id, row.pay_url = external_id, url
        payment.pay_url = url
    return payment


async def log_notification(
    session: AsyncSession,
    *,
    gateway: str,
    outcome: str,
    payment_id: int | None,
    remote_addr: str | None,
    payload: dict[str, Any],
) -> None:
    session.add(
        PaymentNotification(
            gateway=gateway,
            outcome=outcome,
            payment_id=payment_id,
            remote_addr=remote_addr,
            payload=payload,
        )
    )
    await session.flush()


async def settle(
    session: AsyncSession, settings: Settings, gateway: str, confirmed: gateways.Confirmed
) -> str:
    """Credit a verified payment: "credited", "replay" (already credited), or Rejected.

    The payment row is locked, and the ledger's idempotency key makes a second deposit for
    the same payment impossible even if two notifications race.
    """
    payment = await session.scalar(
        select(Payment)
        .where(Payment.id == confirmed.payment_id, Payment.gateway == gateway)
        .with_for_update()
    )
    if payment is None:
        raise gateways.Rejected("unknown_payment")
    if confirmed.amount != payment.amount:
        raise gateways.Rejected("amount_mismatch")
    if confirmed.currency is not None and confirmed.currency != payment.currency:
        raise gateways.Rejected("currency_mismatch")
    if (
        confirmed.external_id is not None
        and payment.external_id is not None
        and confirmed.external_id != payment.external_id
    ):
        raise gateways.Rejected("external_id_mismatch")
    if payment.status == PAYMENT_PAID:
        return "replay"
    ref = confirmed.external_id or payment.external_id or str(payment.id)
    movement = await ledger.credit(
        session,
        user_id=payment.user_id,
        amount=payment.credit_amount,
        kind="deposit",
        reason=f"Deposit via {gateway} (payment #{payment.id})",
        payment_ref=f"{gateway}:{ref}",
        idempotency_key=f"deposit:{gateway}:{payment.id}",
    )
    if movement is None:
        return "replay"
    payment.status = PAYMENT_PAID
    payment.paid_at = utcnow()
    payment.external_id = payment.external_id or confirmed.external_id
    payment.ledger_entry_id = movement.entry_id
    await session.flush()
    await reward_deposit(
        session,
        share=settings.referral_share,
        accrue=settings.affiliate_payouts != "balance",
        user_id=payment.user_id,
        deposit_entry_id=movement.entry_id,
        amount=payment.credit_amount,
    )
    await receipts.create_for_deposit(
        session,
        settings,
        user_id=payment.user_id,
        deposit_entry_id=movement.entry_id,
        amount=payment.amount,
        currency=payment.currency,
        payment_id=payment.id,
        gateway=gateway,
    )
    return "credited"


@dataclass(frozen=True)
class PaymentSearch:
    """The operator's filters of gateway payments (None: any)."""

    user_id: int | None = None
    status: str | None = None
    gateway: str | None = None


async def search_payments(
    session: AsyncSession, where: PaymentSearch, *, limit: int, offset: int
) -> list[Payment]:
    """Payments matching `where`, newest first."""
    stmt = select(Payment).order_by(Payment.id.desc()).limit(limit).offset(offset)
    if where.user_id is not None:
        stmt = stmt.where(Payment.user_id == where.user_id)
    if where.status is not None:
        stmt = stmt.where(Payment.status == where.status)
    if where.gateway is not None:
        stmt = stmt.where(Payment.gateway == where.gateway)
    return list(await session.scalars(stmt))


class PaymentNotFound(NotFound):
    http_status = 404
    message = "Payment not found"


async def payment_with_notifications(
    session: AsyncSession, payment_id: int
) -> tuple[Payment, list[PaymentNotification]]:
    """A payment and every notification its gateway sent for it, in order."""
    payment = await session.get(Payment, payment_id)
    if payment is None:
        raise PaymentNotFound()
    notes = await session.scalars(
        select(PaymentNotification)
        .where(PaymentNotification.payment_id == payment_id)
        .order_by(PaymentNotification.id)
    )
    return payment, list(notes)


async def own_payment(session: AsyncSession, user_id: int, payment_id: int) -> Payment:
    """One of the user's own invoices (another user's is as unknown as a missing one)."""
    payment = await session.get(Payment, payment_id)
    if payment is None or payment.user_id != user_id:
        raise PaymentNotFound()
    return payment
