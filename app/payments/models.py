"""Deposits through payment gateways and every notification they sent."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Money, sql_list, utcnow

PAYMENT_PENDING = "pending"
PAYMENT_PAID = "paid"
# The gateway refused to create the payment (YooKassa unreachable or refusing): nothing to
# pay, so it is never shown as pending. Should the gateway confirm it all the same, it is
# credited as any other.
PAYMENT_FAILED = "failed"
PAYMENT_STATUSES = (PAYMENT_PENDING, PAYMENT_PAID, PAYMENT_FAILED)
GATEWAYS = ("robokassa", "freekassa", "yookassa")


class Payment(Base):
    """An invoice the user pays at a gateway; credited once when the gateway confirms it."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(PAYMENT_STATUSES)})", name="status"),
        CheckConstraint("gateway IN ('robokassa', 'freekassa', 'yookassa')", name="gateway"),
        CheckConstraint("amount > 0 AND credit_amount > 0", name="amounts"),
        UniqueConstraint("gateway", "external_id", name="uq_payments_gateway_external_id"),
        Index("ix_payments_user_id_id", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    gateway: Mapped[str] = mapped_column(String(16))
    # What the user pays, in the gateway's currency.
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    # What the balance receives, in the panel's currency (fixed when the invoice is made).
    credit_amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(
        String(16), default=PAYMENT_PENDING, server_default=PAYMENT_PENDING
    )
    # The gateway's own id of the payment (YooKassa's payment id, Free-Kassa's intid).
    external_id: Mapped[str | None] = mapped_column(String(100))
    pay_url: Mapped[str | None] = mapped_column(String(2000))
    ledger_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    paid_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PaymentNotification(Base):
    """Every notification received, accepted or not: the activity log of the gateways."""

    __tablename__ = "payment_notifications"
    __table_args__ = (Index("ix_payment_notifications_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    gateway: Mapped[str] = mapped_column(String(16))
    payment_id: Mapped[int | None] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String(32))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )


class Chargeback(Base):
    """A disputed or reversed payment (ToS 4.6): the account was blocked, its balance
    forfeited and its active orders cancelled with refunds, once. One row per user: a
    repeat (the operator's second click, a gateway's second notification) answers this
    one's result."""

    __tablename__ = "chargebacks"
    __table_args__ = (UniqueConstraint("user_id", name="uq_chargebacks_user_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # The invoice disputed, when known.
    payment_id: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(500))
    # Who reported it: an operator (their name) or a gateway ("gateway:yookassa").
    source: Mapped[str] = mapped_column(String(200))
    forfeited: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), server_default="0")
    # Order ids: cancelled and refunded at once; cancels relayed to the provider.
    withdrawn: Mapped[list[int]] = mapped_column(JSONB, default=list, server_default="[]")
    cancel_requested: Mapped[list[int]] = mapped_column(JSONB, default=list, server_default="[]")
    receipt_status: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
