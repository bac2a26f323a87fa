"""Conversion rates from other currencies into the panel's currency."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import CheckConstraint, DateTime, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, Money, utcnow


class CurrencyRate(Base):
    __tablename__ = "currency_rates"
    __table_args__ = (
        CheckConstraint("rate > 0", name="rate"),
        CheckConstraint("code ~ '^[A-Z]{3}$'", name="code"),
    )

    code: Mapped[str] = mapped_column(String(3), primary_key=True)
    # How much of the panel's currency one unit of `code` is worth.
    rate: Mapped[Decimal] = mapped_column(Money)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow, server_default=text("now()")
    )
