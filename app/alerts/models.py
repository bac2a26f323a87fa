"""Alerts: conditions an operator must hear about (failed catalog syncs, services sold
below cost, provider balances under their threshold, stuck orders, orders flagged with an
anomaly). An alert is open until its condition is resolved or an operator acknowledges it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Index, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, utcnow


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_created_at", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(20))  # provider, service, order
    subject_id: Mapped[int] = mapped_column(BigInteger)
    message: Mapped[str] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    # Set while the condition holds for an alert raised once per episode: the unique index
    # refuses a second alert until the condition is resolved (then it is cleared).
    open_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # An operator has seen it (and who): it leaves the open alerts, the condition may last.
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=text("now()")
    )
