"""Ledger entries: the immutable record of every balance change."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Money, utcnow

DEPOSIT, CHARGE, REFUND = "deposit", "charge", "refund"
ADJUSTMENT, FORFEIT, REFERRAL = "adjustment", "forfeit", "referral"
KINDS = (DEPOSIT, CHARGE, REFUND, ADJUSTMENT, FORFEIT, REFERRAL)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('deposit', 'charge', 'refund', 'adjustment', 'forfeit', 'referral')",
            name="kind",
        ),
        CheckConstraint("amount <> 0", name="nonzero"),
        CheckConstraint(
            "(kind IN ('deposit', 'refund', 'referral') AND amount > 0)"
            " OR (kind IN ('charge', 'forfeit') AND amount < 0)"
            " OR kind = 'adjustment'",
            name="sign",
        ),
        Index("ix_ledger_entries_user_id_id", "user_id", "id"),
        Index(
            "ix_ledger_entries_order_id", "order_id", postgresql_where=text("order_id IS NOT NULL")
        ),
        # At most one charge and one refund per order, enforced by the database.
        Index(
            "uq_ledger_entries_order_charge",
            "order_id",
            unique=True,
            postgresql_where=text("kind = 'charge'"),
        ),
        Index(
            "uq_ledger_entries_order_refund",
            "order_id",
            unique=True,
            postgresql_where=text("kind = 'refund'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money)
    balance_after: Mapped[Decimal] = mapped_column(Money)
    reason: Mapped[str] = mapped_column(String(500))
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    payment_ref: Mapped[str | None] = mapped_column(String(200))
    operator: Mapped[str | None] = mapped_column(String(200))
    # Makes each money movement happen at most once: "charge:order:7", "refund:order:7",
    # "deposit:yookassa:<id>". The database, not the code, refuses a second one.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
