"""Support tickets: the conversation of a customer with the operators, the operators'
canned answers, and the resolutions of order reviews (ToS 2.5).

A ticket is `open` while it waits for an operator, `answered` once one replied (the
customer's next message opens it again) and `closed` at the end; a closed ticket reopens
when its customer writes within REOPEN_DAYS of the closing. Internal notes are messages
with `internal` set: they are never part of a customer's answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Money, sql_list, utcnow

OPEN, ANSWERED, CLOSED = "open", "answered", "closed"
TICKET_STATUSES = (OPEN, ANSWERED, CLOSED)
CATEGORIES = ("order", "payment", "refill", "cancel", "other")
REVIEW_CATEGORY = "order"
REOPEN_DAYS = timedelta(days=7)

CUSTOMER, OPERATOR = "customer", "operator"
AUTHORS = (CUSTOMER, OPERATOR)

SUBJECT_MAX = 200
MESSAGE_MAX = 5000
ORDERS_MAX = 20

# How an operator ends an order's review.
NO_ACTION, RESEND, REFUND, COMPLETE = "no_action", "resend", "refund", "complete"
RESOLUTIONS = (NO_ACTION, RESEND, REFUND, COMPLETE)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(f"status IN ({sql_list(TICKET_STATUSES)})", name="status"),
        CheckConstraint(f"category IN ({sql_list(CATEGORIES)})", name="category"),
        Index("ix_tickets_user_id_id", "user_id", "id"),
        Index("ix_tickets_status_waiting", "status", "waiting_since"),
        Index("ix_tickets_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(SUBJECT_MAX))
    category: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=OPEN, server_default=OPEN)
    # The orders the customer names (their own, top-level orders).
    order_ids: Mapped[list[int]] = mapped_column(
        ARRAY(BigInteger), default=list, server_default="{}"
    )
    assignee: Mapped[str | None] = mapped_column(String(200))
    # Since when the customer waits for an operator (None: nobody is waiting).
    waiting_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_response_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=text("now()")
    )


class TicketMessage(Base):
    __tablename__ = "ticket_messages"
    __table_args__ = (
        CheckConstraint(f"author IN ({sql_list(AUTHORS)})", name="author"),
        CheckConstraint(f"author = '{OPERATOR}' OR NOT internal", name="internal_by_operator"),
        Index("ix_ticket_messages_ticket_id_id", "ticket_id", "id"),
        Index("ix_ticket_messages_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    author: Mapped[str] = mapped_column(String(16))
    operator: Mapped[str | None] = mapped_column(String(200))
    internal: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )


class CannedAnswer(Base):
    __tablename__ = "canned_answers"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    title: Mapped[str] = mapped_column(String(200), unique=True)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=text("now()")
    )


class ReviewResolution(Base):
    """How an order's review under a ticket ended: at most one per (ticket, order), so a
    second resolution is refused by the database too."""

    __tablename__ = "ticket_resolutions"
    __table_args__ = (
        UniqueConstraint("ticket_id", "order_id", name="uq_ticket_resolutions_ticket_order"),
        CheckConstraint(f"action IN ({sql_list(RESOLUTIONS)})", name="action"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    operator: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
