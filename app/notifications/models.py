"""What a customer wants to be told (order completion, partial, cancel, low balance; by
mail and, once linked, by Telegram), and the outbox of notifications: a row written by a
trigger in the transaction of the change it tells about (migration 5c1e0a7b3d92), then
delivered on each channel at least once."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Money, sql_list, utcnow

ORDER_COMPLETED = "order_completed"
ORDER_PARTIAL = "order_partial"
ORDER_CANCELED = "order_canceled"
BALANCE_LOW = "balance_low"
EVENTS = (ORDER_COMPLETED, ORDER_PARTIAL, ORDER_CANCELED, BALANCE_LOW)


class NotificationSettings(Base):
    __tablename__ = "notification_settings"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    order_completed: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    order_partial: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    order_canceled: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    low_balance: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    # Told once when a balance falls below this (again after it has risen above it).
    low_balance_below: Mapped[Decimal] = mapped_column(
        Money, default=Decimal(0), server_default="0"
    )
    by_mail: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    telegram_chat_id: Mapped[int | None] = mapped_column(BigInteger)
    telegram_linked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The one-time code the customer sends the bot, as SHA-256, until it is used or expires.
    telegram_code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    telegram_code_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Notification(Base):
    __tablename__ = "notification_outbox"
    __table_args__ = (
        CheckConstraint(f"event IN ({sql_list(EVENTS)})", name="event"),
        Index(
            "ix_notification_outbox_due",
            "next_attempt_at",
            postgresql_where=text("done_at IS NULL"),
        ),
        Index("ix_notification_outbox_user_id_id", "user_id", "id"),
        # One notification per order and event, whatever happens to the order later.
        Index(
            "uq_notification_outbox_order_event",
            "order_id",
            "event",
            unique=True,
            postgresql_where=text("order_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[int | None] = mapped_column(BigInteger)
    # The balance a low-balance notification tells.
    balance: Mapped[Decimal | None] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    mail_done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    telegram_done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


class TelegramState(Base):
    """The panel's bot as the poll job found it: its @name (getMe, for the account page's
    link) and where its updates were read up to (getUpdates' offset). One row."""

    __tablename__ = "telegram_state"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    next_offset: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    bot_username: Mapped[str | None] = mapped_column(String(64))
