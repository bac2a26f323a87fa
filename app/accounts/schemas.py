"""Operator views of users and their API keys. Money as exact decimal strings."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from app.http.schemas import AdminInput, PlainDecimal, example


class UserIn(AdminInput):
    model_config = example(
        email="reseller@example.com", name="Reseller", currency="USD", initial_balance="25.00"
    )
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str | None = Field(default=None, max_length=200)
    currency: str | None = Field(
        default=None,
        min_length=3,
        max_length=3,
        description="the panel's currency (the default); no other is accepted",
    )
    credit_limit: PlainDecimal = Field(
        default=Decimal(0), ge=0, max_digits=20, decimal_places=8, description="allowed overdraft"
    )
    initial_balance: PlainDecimal = Field(
        default=Decimal(0), ge=0, max_digits=20, decimal_places=8, description="a first deposit"
    )
    referral_code: str | None = Field(
        default=None, max_length=16, description="the referral code of who referred this user"
    )


class UserPatch(AdminInput):
    model_config = example(discount_percent="10", name="Reseller Ltd")
    email: str | None = Field(
        default=None, min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"
    )
    name: str | None = Field(default=None, max_length=200)
    currency: str | None = Field(
        default=None, min_length=3, max_length=3, description="only the panel's currency"
    )
    credit_limit: PlainDecimal | None = Field(default=None, ge=0, max_digits=20, decimal_places=8)
    discount_percent: PlainDecimal | None = Field(
        default=None,
        ge=0,
        le=100,
        max_digits=5,
        decimal_places=2,
        description="off every service without a custom rate for this user",
    )


class UserOut(BaseModel):
    model_config = example(
        id=1,
        email="reseller@example.com",
        name="Reseller",
        status="active",
        currency="USD",
        balance="25.00000000",
        credit_limit="0",
        created_at="2026-01-01T00:00:00Z",
        blocked_at=None,
    )
    id: int
    email: str | None
    name: str | None
    status: str
    currency: str
    balance: PlainDecimal
    credit_limit: PlainDecimal
    created_at: datetime
    blocked_at: datetime | None
    discount_percent: PlainDecimal = Decimal(0)
    referral_code: str | None = None
    referred_by_id: int | None = None
    deleted_at: datetime | None = None


class UserCreated(UserOut):
    model_config = example(
        id=1, email="reseller@example.com", status="active", api_key="5f0c…(shown once)"
    )
    api_key: str = Field(description="shown once; only its hash is stored")


class KeyOut(BaseModel):
    model_config = example(user_id=1, api_key="5f0c…(shown once)", prefix="5f0c1a")
    user_id: int
    api_key: str = Field(description="shown once; only its hash is stored")
    prefix: str


class BlockIn(AdminInput):
    model_config = example(reason="Chargeback on payment 123")
    reason: str = Field(min_length=1, max_length=300)


class BlockOut(BaseModel):
    model_config = example(user_id=1, withdrawn=[5], cancel_requested=[7], forfeited="12.5")
    user_id: int
    withdrawn: list[int]
    cancel_requested: list[int]
    forfeited: PlainDecimal
