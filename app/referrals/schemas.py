"""The referral program as the operator API shows it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.http.schemas import AdminInput, PlainDecimal


class ReferrerIn(AdminInput):
    model_config = ConfigDict(json_schema_extra={"examples": [{"referral_code": "K3XQ7M2PLA"}]})
    referral_code: str = Field(min_length=1, max_length=16)


class ReferrerOut(BaseModel):
    user_id: int
    referred_by_id: int | None


class VoidIn(AdminInput):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "Deposit charged back"}]})
    reason: str = Field(min_length=1, max_length=300)


class RewardOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    referrer_id: int
    referred_id: int | None
    deposit_entry_id: int
    deposit_amount: PlainDecimal
    share: PlainDecimal
    amount: PlainDecimal
    status: str
    created_at: datetime
    voided_at: datetime | None
    voided_by: str | None
    void_reason: str | None
    hold_reason: str | None = Field(default=None, description="why it is held for review")
    released_at: datetime | None = None
    released_by: str | None = None


class PayoutOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    user_id: int
    amount: PlainDecimal
    status: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    reject_reason: str | None
    ledger_entry_id: int | None


class RejectIn(AdminInput):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "Self-referrals"}]})
    reason: str = Field(min_length=1, max_length=300)
