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

from app.db import Base, Money, sql_list, utcnow

REWARD_CREDITED = "credited"
REWARD_VOIDED = "voided"
# Not credited: a sign of abuse (a shared address or device, the same mailbox) holds it
# for the operator, who releases (credits) or voids it.
REWARD_HELD = "held"
REWARD_STATUSES = (REWARD_CREDITED, REWARD_VOIDED, REWARD_HELD)
TRACE_SIGNUP = "signup"
TRACE_SIGNIN = "signin"


class ReferralReward(Base):
    __tablename__ = "referral_rewards"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(REWARD_STATUSES)})", name="status"),
        CheckConstraint("status <> 'credited' OR ledger_entry_id IS NOT NULL", name="credited"),
        CheckConstraint("status <> 'held' OR ledger_entry_id IS NULL", name="held"),
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
    # None while held (and when voided without ever being credited).
    ledger_entry_id: Mapped[int | None] = mapped_column(BigInteger)
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
    hold_reason: Mapped[str | None] = mapped_column(String(300))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_by: Mapped[str | None] = mapped_column(String(200))


class ClientTrace(Base):
    """Where a customer signed up or signed in from: the client address and the browser's
    device cookie, for the referral program's abuse signals."""

    __tablename__ = "client_traces"
    __table_args__ = (
        Index("ix_client_traces_user_id", "user_id"),
        Index("ix_client_traces_ip", "ip"),
        Index("ix_client_traces_device", "device"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    ip: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
