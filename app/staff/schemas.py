"""What the operator API reads and shows about staff members: never a password hash, a
TOTP seed or a stored digest; an API token only once, in the answer that issues it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.http.schemas import AdminInput, PlainDecimal, example

Role = Literal["owner", "manager", "support", "finance"]


class StaffIn(AdminInput):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"email": "ann@example.com", "role": "support"}]},
    )
    email: str = Field(max_length=320)
    role: Role
    language: Literal["en", "ru"] = Field(default="en", description="of the invitation mail")


class StaffPatch(AdminInput):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "manager"}]})
    role: Role


class StaffOut(BaseModel):
    model_config = example(
        id=2,
        email="ann@example.com",
        role="support",
        permissions=["catalog:read", "orders:read", "tickets:read", "tickets:write"],
        has_password=True,
        two_factor=True,
        disabled_at=None,
        created_at="2026-01-01T00:00:00Z",
    )
    id: int
    email: str
    role: str
    permissions: list[str]
    has_password: bool
    two_factor: bool
    disabled_at: datetime | None
    created_at: datetime


class StaffSessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    enrolling: bool
    created_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None


class StaffTokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    prefix: str = Field(description="the token's first characters, to recognise it")
    created_at: datetime
    last_used_at: datetime | None


class TokenIn(AdminInput):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "deploy"}]})
    name: str = Field(default="api", min_length=1, max_length=100)


class IssuedTokenOut(StaffTokenOut):
    token: str = Field(description="shown this once: send as `Authorization: Bearer <token>`")


class RevokedOut(BaseModel):
    revoked: int


class AcceptedOut(BaseModel):
    status: Literal["accepted"] = "accepted"


class StaffSettingsIn(AdminInput):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"support_refund_limit": "5.00"}]}
    )
    support_refund_limit: Decimal = Field(ge=0, max_digits=20, decimal_places=8)


class StaffSettingsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    support_refund_limit: PlainDecimal = Field(
        description="the largest refund a support agent may grant on one review resolution"
    )
    updated_at: datetime | None = None
