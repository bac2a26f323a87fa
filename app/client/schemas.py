"""What the customer API shows of services, orders, money, referrals and privacy requests.
Money is an exact decimal string, never a float."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.http.schemas import example


class ServiceOut(BaseModel):
    service: int
    name: str
    type: str
    category: str
    rate: str = Field(description="what this user pays per 1000")
    min: int
    max: int
    refill: bool
    cancel: bool
    dripfeed: bool
    description: str | None
    fields: list[str] = Field(description="the fields POST /client/v1/orders takes for this type")


class PlacedOut(BaseModel):
    order: int


class OrderOut(BaseModel):
    id: int
    service_id: int
    type: str
    link: str
    quantity: int
    charge: str
    refunded: str
    status: str
    start_count: int | None
    remains: int | None
    runs: int | None
    interval: int | None
    created_at: datetime
    updated_at: datetime


class OrderPage(BaseModel):
    orders: list[OrderOut]
    next_cursor: int | None = Field(description="pass as `cursor` for the next (older) page")


class RefillOut(BaseModel):
    id: int
    status: str
    created_at: datetime


class OrderDetailOut(OrderOut):
    params: dict[str, Any]
    refills: list[RefillOut]
    drip_feed_runs: list[OrderOut]


class RefillMadeOut(BaseModel):
    refill: int


class CanceledOut(BaseModel):
    cancel: int = 1


class MassIn(BaseModel):
    model_config = example(lines="1|https://example.com/a|100\n2|https://example.com/b|500")
    lines: str = Field(max_length=200_000, description="`service_id|link|quantity` per line")


class MassLineOut(BaseModel):
    line: int
    order: int | None = None
    error: str | None = None


class MassOut(BaseModel):
    results: list[MassLineOut]


class TransactionOut(BaseModel):
    id: int
    kind: str
    amount: str
    balance_after: str
    reason: str
    order_id: int | None
    created_at: datetime


class TransactionPage(BaseModel):
    transactions: list[TransactionOut]
    next_cursor: int | None


class DepositIn(BaseModel):
    model_config = example(gateway="yookassa", amount="10.00")
    gateway: str = Field(max_length=32)
    amount: str = Field(max_length=40, description="in the panel's currency")


class DepositOut(BaseModel):
    payment: int
    gateway: str
    amount: str
    currency: str
    credit: str
    credit_currency: str
    status: str
    pay_url: str | None
    created_at: datetime
    paid_at: datetime | None


class MonthOut(BaseModel):
    month: str
    earned: str


class RewardOut(BaseModel):
    id: int
    referred_id: int | None
    deposit_amount: str
    amount: str
    status: str
    created_at: datetime


class ReferralsOut(BaseModel):
    code: str | None
    link: str | None
    signups: int
    earnings: list[MonthOut]
    rewards: list[RewardOut]


class DeletionOut(BaseModel):
    id: int
    requested_at: datetime
    deadline: datetime
    completed_at: datetime | None
