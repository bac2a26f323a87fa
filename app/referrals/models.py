"""Referral rewards: a share of a referred user's deposits for the referrer, credited to
their balance at once, or accrued until the referrer asks for a payout (AFFILIATE_PAYOUTS);
and those payout requests."""

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

REWARD_CREDITED = "credited"  # on the referrer's balance
REWARD_ACCRUED = "accrued"  # earned, waiting for a payout to the balance
REWARD_VOIDED = "voided"
# Not credited nor accrued: a sign of abuse (a shared address or device, the same
# mailbox) holds it for the operator, who releases or voids it.
REWARD_HELD = "held"
REWARD_STATUSES = (REWARD_CREDITED, REWARD_ACCRUED, REWARD_VOIDED, REWARD_HELD)
TRACE_SIGNUP = "signup"
TRACE_SIGNIN = "signin"

PAYOUT_PENDING = "pending"  # waiting for the operator's review
PAYOUT_PAID = "paid"  # credited to the referrer's balance
PAYOUT_REJECTED = "rejected"  # its rewards are available again
PAYOUT_STATUSES = (PAYOUT_PENDING, PAYOUT_PAID, PAYOUT_REJECTED)


class ReferralReward(Base):
    __tablename__ = "referral_rewards"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(REWARD_STATUSES)})", name="status"),
        CheckConstraint("status <> 'credited' OR ledger_entry_id IS NOT NULL", name="credited"),
        CheckConstraint("status <> 'held' OR ledger_entry_id IS NULL", name="held"),
        CheckConstraint("amount > 0", name="amount"),
        Index("ix_referral_rewards_referrer_id_id", "referrer_id", "id"),
        Index(
            "ix_referral_rewards_payout_id",
            "payout_id",
            postgresql_where=text("payout_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    referrer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    referred_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # One reward per deposit, whatever retries happen.
    deposit_entry_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    deposit_amount: Mapped[Decimal] = mapped_column(Money)
    share: Mapped[Decimal] = mapped_column(Numeric(7, 6))
    amount: Mapped[Decimal] = mapped_column(Money)
    # The credit on the referrer's balance (None while accrued or held).
    ledger_entry_id: Mapped[int | None] = mapped_column(BigInteger)
    # The payout request that carries it (accrued rewards only).
    payout_id: Mapped[int | None] = mapped_column(ForeignKey("referral_payouts.id"))
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


class ReferralPayout(Base):
    """A referrer's request to move their accrued rewards to their balance: paid at once
    (AFFILIATE_PAYOUTS=request) or after the operator's review (review)."""

    __tablename__ = "referral_payouts"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(PAYOUT_STATUSES)})", name="status"),
        CheckConstraint("amount > 0", name="amount"),
        Index("ix_referral_payouts_user_id_id", "user_id", "id"),
        # One request under review per referrer at a time.
        Index(
            "uq_referral_payouts_pending",
            "user_id",
            unique=True,
            postgresql_where=text(f"status = '{PAYOUT_PENDING}'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    amount: Mapped[Decimal] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    reject_reason: Mapped[str | None] = mapped_column(String(300))
    ledger_entry_id: Mapped[int | None] = mapped_column(BigInteger)
