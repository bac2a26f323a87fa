"""Operator top-ups and the view of gateway payments. Money as exact decimal strings."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.http.schemas import AdminInput, PlainDecimal, example


class TopupIn(AdminInput):
    model_config = example(amount="50.00", payment_ref="bank-2026-0001", reason="Bank transfer")
    amount: PlainDecimal = Field(gt=0, max_digits=20, decimal_places=8)
    payment_ref: str | None = Field(
        default=None, max_length=150, description="makes the top-up idempotent"
    )
    reason: str = Field(default="Top-up", max_length=300)


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    user_id: int
    gateway: str
    amount: PlainDecimal
    currency: str
    credit_amount: PlainDecimal
    status: str
    external_id: str | None
    ledger_entry_id: int | None
    created_at: Any
    paid_at: Any


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    gateway: str
    payment_id: int | None
    outcome: str
    remote_addr: str | None
    payload: dict[str, Any]
    created_at: Any


class PaymentDetail(PaymentOut):
    notifications: list[NotificationOut]
