"""Referral rewards: a share of a referred user's deposits credited to the referrer."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Numeric,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Money, utcnow

REWARD_CREDITED = "credited"
REWARD_VOIDED = "voided"


class ReferralReward(Base):
    __tablename__ = "referral_rewards"
    __table_args__ = (
        CheckConstraint("status IN ('credited', 'voided')", name="status"),
        CheckConstraint("amount > 0", name="amount"),
        Index("ix_referral_rewards_referrer_id_id", "referrer_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    referrer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    referred_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # One reward per deposit, whatever retries happen.
    deposit_entry_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    deposit_amount: Mapped[Decimal] = mapped_column(Money)
    share: Mapped[Decimal] = mapped_column(Numeric(7, 6))
    amount: Mapped[Decimal] = mapped_column(Money)
    ledger_entry_id: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(
        String(16), default=REWARD_CREDITED, server_default=REWARD_CREDITED
    )
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    voided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    voided_by: Mapped[str | None] = mapped_column(String(200))
    void_reason: Mapped[str | None] = mapped_column(String(300))
    void_entry_id: Mapped[int | None] = mapped_column(BigInteger)
