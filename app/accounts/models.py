"""Users and their API keys."""

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

USER_ACTIVE = "active"
USER_BLOCKED = "blocked"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("status IN ('active', 'blocked')", name="status"),
        CheckConstraint("credit_limit >= 0", name="credit_limit"),
        # The ledger's guard: a balance never goes below the granted credit.
        CheckConstraint("balance >= -credit_limit", name="balance_floor"),
        CheckConstraint("discount_percent >= 0 AND discount_percent <= 100", name="discount"),
        CheckConstraint("referred_by_id IS NULL OR referred_by_id <> id", name="no_self_referral"),
        # One mailbox, one user: emails are stored lower-cased and unique whatever the case.
        Index("uq_users_email_lower", text("lower(email)"), unique=True),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=USER_ACTIVE, server_default=USER_ACTIVE)
    currency: Mapped[str] = mapped_column(String(3), default="USD", server_default="USD")
    # Cached sum of the user's ledger entries; only app.ledger writes it.
    balance: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), server_default="0")
    credit_limit: Mapped[Decimal] = mapped_column(Money, default=Decimal(0), server_default="0")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    blocked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A discount on every service without a custom rate for this user.
    discount_percent: Mapped[Decimal] = mapped_column(
        Numeric(5, 2), default=Decimal(0), server_default="0"
    )
    # The code others give to be referred by this user; who referred this user.
    referral_code: Mapped[str | None] = mapped_column(String(16), unique=True)
    referred_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Set when the user's personal data was erased; the records are purged after retention.
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        Index("ix_api_keys_user_active", "user_id", postgresql_where=text("revoked_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # A short visible prefix so operators can tell keys apart; the key itself is never stored.
    prefix: Mapped[str] = mapped_column(String(12))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
