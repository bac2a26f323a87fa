"""Receipts of credited deposits (422-FZ for a self-employed operator, 54-FZ through a
gateway): one per deposit, whatever retries happen (the deposit's ledger entry is unique
here), with the tax service's receipt id and link once registered.

States: `pending` (to register; `attempts` > 0 means a request may have reached the tax
service, so the next attempt looks for it there before sending again), `registered`,
`cancel_pending` (the deposit was reversed: the registered receipt is to be cancelled),
`cancelled`, `gateway` (the gateway registered it with the payment), `failed` (cannot be
registered as it is, e.g. not in roubles: the operator's matter).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Money, sql_list, utcnow

RECEIPT_PENDING = "pending"
RECEIPT_REGISTERED = "registered"
RECEIPT_CANCEL_PENDING = "cancel_pending"
RECEIPT_CANCELLED = "cancelled"
RECEIPT_GATEWAY = "gateway"
RECEIPT_FAILED = "failed"
RECEIPT_STATUSES = (
    RECEIPT_PENDING,
    RECEIPT_REGISTERED,
    RECEIPT_CANCEL_PENDING,
    RECEIPT_CANCELLED,
    RECEIPT_GATEWAY,
    RECEIPT_FAILED,
)
# What the delivery job works on.
RECEIPT_DUE = (RECEIPT_PENDING, RECEIPT_CANCEL_PENDING)
BACKEND_SELF_EMPLOYED = "self-employed"
BACKEND_GATEWAY = "gateway"


class Receipt(Base):
    __tablename__ = "receipts"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(RECEIPT_STATUSES)})", name="status"),
        CheckConstraint("backend IN ('self-employed', 'gateway')", name="backend"),
        CheckConstraint("amount > 0", name="amount"),
        Index(
            "ix_receipts_due",
            "next_attempt_at",
            postgresql_where=text(f"status IN ({sql_list(RECEIPT_DUE)})"),
        ),
        Index("ix_receipts_payment_id", "payment_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # Exactly one receipt per credited deposit.
    deposit_entry_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    # The gateway invoice it pays for (None for an operator's top-up).
    payment_id: Mapped[int | None] = mapped_column(BigInteger)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    backend: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    # The tax service's receipt id (approvedReceiptUuid) and its printable link.
    external_id: Mapped[str | None] = mapped_column(String(100))
    url: Mapped[str | None] = mapped_column(String(500))
    # The time the income is registered with (fixed once: the next attempt looks for it).
    operation_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    registered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
