"""Request and response models of the operator API (money as exact decimal strings)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.catalog.models import SERVICE_TYPES


def example(**values: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [values]}, from_attributes=True)


class UserIn(BaseModel):
    model_config = example(
        email="reseller@example.com", name="Reseller", currency="USD", initial_balance="25.00"
    )
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str | None = Field(default=None, max_length=200)
    currency: str = Field(default="USD", min_length=3, max_length=3)
    credit_limit: Decimal = Field(
        default=Decimal(0), ge=0, max_digits=20, decimal_places=8, description="allowed overdraft"
    )
    initial_balance: Decimal = Field(
        default=Decimal(0), ge=0, max_digits=20, decimal_places=8, description="a first deposit"
    )
    referral_code: str | None = Field(
        default=None, max_length=16, description="the referral code of who referred this user"
    )


class UserPatch(BaseModel):
    model_config = example(discount_percent="10", name="Reseller Ltd")
    email: str | None = Field(
        default=None, min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$"
    )
    name: str | None = Field(default=None, max_length=200)
    credit_limit: Decimal | None = Field(default=None, ge=0, max_digits=20, decimal_places=8)
    discount_percent: Decimal | None = Field(
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
    balance: Decimal
    credit_limit: Decimal
    created_at: datetime
    blocked_at: datetime | None
    discount_percent: Decimal = Decimal(0)
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


class TopupIn(BaseModel):
    model_config = example(amount="50.00", payment_ref="bank-2026-0001", reason="Bank transfer")
    amount: Decimal = Field(gt=0, max_digits=20, decimal_places=8)
    payment_ref: str | None = Field(
        default=None, max_length=150, description="makes the top-up idempotent"
    )
    reason: str = Field(default="Top-up", max_length=300)


class AdjustIn(BaseModel):
    model_config = example(amount="-1.50", reason="Goodwill correction")
    amount: Decimal = Field(max_digits=20, decimal_places=8, description="signed, not zero")
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
    balance: Decimal
    duplicate: bool = False


class BlockIn(BaseModel):
    model_config = example(reason="Chargeback on payment 123")
    reason: str = Field(min_length=1, max_length=300)


class BlockOut(BaseModel):
    model_config = example(user_id=1, withdrawn=[5], cancel_requested=[7], forfeited="12.5")
    user_id: int
    withdrawn: list[int]
    cancel_requested: list[int]
    forfeited: Decimal


class RateIn(BaseModel):
    model_config = example(rate="0.75")
    rate: Decimal = Field(ge=0, max_digits=20, decimal_places=8)


class RateOut(BaseModel):
    model_config = example(user_id=1, service_id=3, rate="0.75")
    user_id: int
    service_id: int
    rate: Decimal


class CategoryIn(BaseModel):
    model_config = example(name="Instagram", position=0, enabled=True)
    name: str = Field(min_length=1, max_length=200)
    position: int = Field(default=0, ge=-(2**31), le=2**31 - 1)
    enabled: bool = True


class CategoryPatch(BaseModel):
    model_config = example(enabled=False)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    position: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)
    enabled: bool | None = None


class CategoryOut(CategoryIn):
    model_config = example(id=1, name="Instagram", position=0, enabled=True)
    id: int


class ServiceFields(BaseModel):
    category_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    name: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = None
    type: str | None = None
    rate: Decimal | None = Field(default=None, ge=0, max_digits=20, decimal_places=8)
    min_quantity: int | None = Field(default=None, ge=1, le=10**15)
    max_quantity: int | None = Field(default=None, ge=1, le=10**15)
    step: int | None = Field(default=None, ge=1, le=10**6)
    refill: bool | None = None
    refill_days: int | None = Field(default=None, ge=0, le=3650)
    cancel: bool | None = None
    dripfeed: bool | None = None
    link_pattern: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None
    position: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)
    provider_id: int | None = Field(default=None, ge=1, le=2**63 - 1)
    provider_service_id: str | None = Field(default=None, max_length=64)
    provider_rate: Decimal | None = Field(default=None, ge=0, max_digits=20, decimal_places=8)
    provider_dripfeed: bool | None = None

    @field_validator("type")
    @classmethod
    def known_type(cls, value: str | None) -> str | None:
        if value is not None and value not in SERVICE_TYPES:
            raise ValueError(f"type must be one of {', '.join(SERVICE_TYPES)}")
        return value

    @field_validator("link_pattern")
    @classmethod
    def compiles(cls, value: str | None) -> str | None:
        if value:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"link_pattern does not compile: {exc}") from exc
        return value

    @model_validator(mode="after")
    def bounds(self) -> ServiceFields:
        if self.min_quantity and self.max_quantity and self.min_quantity > self.max_quantity:
            raise ValueError("min_quantity must not exceed max_quantity")
        return self


class ServiceIn(ServiceFields):
    model_config = example(
        category_id=1,
        name="Instagram Followers",
        type="Default",
        rate="0.90",
        min_quantity=50,
        max_quantity=10000,
        refill=True,
        refill_days=30,
        cancel=True,
        link_pattern=r"^https://(www\.)?instagram\.com/",
    )
    category_id: int = Field(ge=1, le=2**63 - 1)
    name: str = Field(min_length=1, max_length=300)
    type: str = "Default"
    rate: Decimal = Field(ge=0, max_digits=20, decimal_places=8)
    min_quantity: int = Field(ge=1, le=10**15)
    max_quantity: int = Field(ge=1, le=10**15)


class ServicePatch(ServiceFields):
    model_config = example(rate="1.10", enabled=False)


class ServiceOut(BaseModel):
    model_config = example(
        id=1,
        category_id=1,
        name="Instagram Followers",
        type="Default",
        rate="0.90000000",
        min_quantity=50,
        max_quantity=10000,
        step=1,
        refill=True,
        refill_days=30,
        cancel=True,
        dripfeed=False,
        enabled=True,
        position=0,
    )
    id: int
    category_id: int
    name: str
    description: str | None = None
    type: str
    rate: Decimal
    min_quantity: int
    max_quantity: int
    step: int
    refill: bool
    refill_days: int
    cancel: bool
    dripfeed: bool
    link_pattern: str | None = None
    enabled: bool
    position: int
    provider_id: int | None = None
    provider_service_id: str | None = None
    provider_rate: Decimal | None = None
    provider_dripfeed: bool = False
    deleted_at: datetime | None = None


class OrderOut(BaseModel):
    model_config = example(
        id=1,
        user_id=1,
        service_id=1,
        type="Default",
        link="https://instagram.com/x",
        quantity=1000,
        charge="0.90000000",
        refunded="0",
        status="In progress",
        upstream_state="sent",
        provider_order_id="998877",
        start_count=3572,
        remains=1000,
        created_at="2026-01-01T00:00:00Z",
    )
    id: int
    user_id: int
    service_id: int
    parent_id: int | None = None
    type: str
    link: str
    quantity: int
    runs: int | None = None
    interval_minutes: int | None = None
    charge: Decimal
    refunded: Decimal
    status: str
    upstream_state: str
    provider_id: int | None = None
    provider_order_id: str | None = None
    start_count: int | None = None
    remains: int | None = None
    attempts: int = 0
    last_error: str | None = None
    cancel_state: str | None = None
    created_at: datetime
    finished_at: datetime | None = None


class EventOut(BaseModel):
    model_config = example(
        id=1,
        action="add",
        outcome="sent",
        detail={"provider_order_id": "1"},
        created_at="2026-01-01T00:00:00Z",
    )
    id: int
    action: str
    outcome: str
    detail: dict[str, Any]
    created_at: datetime


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
    amount: Decimal
    balance_after: Decimal
    reason: str
    order_id: int | None
    payment_ref: str | None
    operator: str | None
    created_at: datetime


class OrderDetail(OrderOut):
    model_config = example(id=1, status="Partial", upstream_history=[], ledger=[], runs_of=[])
    params: dict[str, Any] = {}
    upstream_history: list[EventOut]
    ledger: list[LedgerEntryOut]
    runs_of: list[OrderOut] = Field(default=[], description="drip-feed runs")


class OrderStatusIn(BaseModel):
    model_config = example(status="Partial", start_count=3572, remains=157)
    status: str = Field(pattern="^(In progress|Processing|Completed|Partial|Canceled)$")
    start_count: int | None = Field(default=None, ge=0, le=10**15)
    remains: int | None = Field(default=None, ge=-(10**15), le=10**15)


class InvariantOut(BaseModel):
    model_config = example(ok=True, checked_users=10, checked_orders=250, violations=[])
    ok: bool
    checked_users: int
    checked_orders: int
    violations: list[dict[str, Any]]


class RefillOut(BaseModel):
    model_config = example(
        id=1,
        order_id=1,
        user_id=1,
        status="Pending",
        upstream_state="queued",
        provider_refill_id=None,
        created_at="2026-01-01T00:00:00Z",
    )
    id: int
    order_id: int
    user_id: int
    status: str
    upstream_state: str
    provider_refill_id: str | None
    created_at: datetime


class RefillStatusIn(BaseModel):
    model_config = example(status="Completed")
    status: str = Field(pattern="^(In progress|Completed|Rejected)$")


class AuditOut(BaseModel):
    model_config = example(
        id=1,
        actor="admin",
        action="user.topup",
        entity="user",
        entity_id="1",
        before=None,
        after={"amount": "50"},
        created_at="2026-01-01T00:00:00Z",
    )
    id: int
    actor: str
    action: str
    entity: str
    entity_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    created_at: datetime
