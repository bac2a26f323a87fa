"""Receipts as the operator API shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from app.http.schemas import PlainDecimal


class ReceiptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    user_id: int
    payment_id: int | None
    deposit_entry_id: int
    amount: PlainDecimal
    currency: str
    backend: str
    status: str
    url: str | None
    external_id: str | None
    attempts: int
    last_error: str | None
    created_at: datetime
    registered_at: datetime | None
    cancelled_at: datetime | None
