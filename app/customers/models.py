"""A customer's sign-in data beside the user row: password hash, verification, profile,
TOTP, and the secrets handed out by mail or at sign-in (sessions, single-use tokens,
recovery codes), every one of which is stored only as a hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow

LANGUAGES = ("en", "ru")
# What a mailed token is for (names, not secrets).
TOKEN_VERIFY = "verify"  # noqa: S105
TOKEN_RESET = "reset"  # noqa: S105
TOKEN_INVITE = "invite"  # noqa: S105


class CustomerLogin(Base):
    __tablename__ = "customer_logins"
    __table_args__ = (CheckConstraint("language IN ('en', 'ru')", name="language"),)

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    # Argon2id (argon2-cffi's encoded form); None until an invited user sets one.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    language: Mapped[str] = mapped_column(String(2), default="en", server_default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # The currency the pages show amounts and take deposits in (None: the panel's own);
    # charges and the balance stay in the panel's currency.
    display_currency: Mapped[str | None] = mapped_column(String(3))
    # Set by /2fa/setup; two-factor sign-in is on once totp_enabled_at is set.
    # Encrypted with SECRET_KEY (app/keyring.py, purpose "customer.totp"), never in clear.
    totp_secret: Mapped[str | None] = mapped_column(Text)
    totp_enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last TOTP time step accepted at sign-in: a code is never accepted twice.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )


class CustomerSession(Base):
    __tablename__ = "customer_sessions"
    __table_args__ = (Index("ix_customer_sessions_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class CustomerToken(Base):
    """A single-use token sent by mail: verify the address, reset or set the password."""

    __tablename__ = "customer_tokens"
    __table_args__ = (
        CheckConstraint("purpose IN ('verify', 'reset', 'invite')", name="purpose"),
        Index("ix_customer_tokens_user_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"
    __table_args__ = (Index("ix_recovery_codes_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
