"""Ledger views and the operator's balance changes. Money as exact decimal strings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field, field_validator

from app.http.schemas import AdminInput, PlainDecimal, example


class AdjustIn(AdminInput):
    model_config = example(amount="-1.50", reason="Goodwill correction")
    amount: PlainDecimal = Field(max_digits=20, decimal_places=8, description="signed, not zero")
    reason: str = Field(min_length=1, max_length=300)
    allow_negative: bool = Field(default=False, description="may go below the credit floor")

    @field_validator("amount")
    @classmethod
    def not_zero(cls, value: Decimal) -> Decimal:
        if value == 0:
            raise ValueError("amount must not be zero")
        return value


class MovementOut(BaseModel):
    model_config = example(user_id=1, balance="75.00000000", duplicate=False)
    user_id: int
    balance: PlainDecimal
    duplicate: bool = False


class LedgerEntryOut(BaseModel):
    model_config = example(
        id=1,
        user_id=1,
        kind="charge",
        amount="-0.90000000",
        balance_after="24.10000000",
        reason="Order 1",
        order_id=1,
        payment_ref=None,
        operator=None,
        created_at="2026-01-01T00:00:00Z",
    )
    id: int
    user_id: int
    kind: str
    amount: PlainDecimal
    balance_after: PlainDecimal
    reason: str
    order_id: int | None
    payment_ref: str | None
    operator: str | None
    created_at: datetime


class InvariantOut(BaseModel):
    model_config = example(ok=True, checked_users=10, checked_orders=250, violations=[])
    ok: bool
    checked_users: int
    checked_orders: int
    violations: list[dict[str, Any]]
