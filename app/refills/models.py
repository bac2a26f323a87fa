"""Refill requests on delivered orders."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
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

from app.db import Base, utcnow

R_PENDING = "Pending"
R_IN_PROGRESS = "In progress"
R_COMPLETED = "Completed"
R_REJECTED = "Rejected"
REFILL_STATUSES = (R_PENDING, R_IN_PROGRESS, R_COMPLETED, R_REJECTED)
REFILL_ACTIVE = (R_PENDING, R_IN_PROGRESS)


class Refill(Base):
    __tablename__ = "refills"
    __table_args__ = (
        CheckConstraint(
            "status IN ('Pending', 'In progress', 'Completed', 'Rejected')", name="status"
        ),
        # At most one active refill per order.
        Index(
            "uq_refills_active_order",
            "order_id",
            unique=True,
            postgresql_where=text("status IN ('Pending', 'In progress')"),
        ),
        Index("ix_refills_user_id_id", "user_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16), default=R_PENDING, server_default=R_PENDING)
    # manual / queued / sending / sent / review / rejected, as for orders.
    upstream_state: Mapped[str] = mapped_column(String(16))
    provider_refill_id: Mapped[str | None] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=text("now()")
    )
