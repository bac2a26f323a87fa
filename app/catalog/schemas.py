"""Categories, services and custom rates as the operator API shows them (money as exact
decimal strings)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from app.catalog.models import SERVICE_TYPES
from app.catalog.patterns import compile_pattern
from app.db import MAX_ID
from app.http.schemas import AdminInput, PlainDecimal, example


class RateIn(AdminInput):
    model_config = example(rate="0.75")
    rate: PlainDecimal = Field(ge=0, max_digits=20, decimal_places=8)


class RateOut(BaseModel):
    model_config = example(user_id=1, service_id=3, rate="0.75")
    user_id: int
    service_id: int
    rate: PlainDecimal


class CategoryIn(AdminInput):
    model_config = example(name="Instagram", position=0, enabled=True)
    name: str = Field(min_length=1, max_length=200)
    position: int = Field(default=0, ge=-(2**31), le=2**31 - 1)
    enabled: bool = True


class CategoryPatch(AdminInput):
    model_config = example(enabled=False)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    position: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)
    enabled: bool | None = None


class CategoryOut(CategoryIn):
    model_config = example(id=1, name="Instagram", position=0, enabled=True)
    id: int


class ServiceFields(AdminInput):
    category_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    name: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = None
    name_ru: str | None = Field(
        default=None, max_length=300, description="the name Russian-speaking customers read"
    )
    description_ru: str | None = None
    type: str | None = None
    rate: PlainDecimal | None = Field(default=None, ge=0, max_digits=20, decimal_places=8)
    min_quantity: int | None = Field(default=None, ge=1, le=10**15)
    max_quantity: int | None = Field(default=None, ge=1, le=10**15)
    step: int | None = Field(default=None, ge=1, le=10**6)
    refill: bool | None = None
    refill_days: int | None = Field(default=None, ge=0, le=3650)
    cancel: bool | None = None
    dripfeed: bool | None = None
    link_pattern: str | None = Field(
        default=None,
        max_length=500,
        description="RE2 expression a link must match (searched, unless anchored); "
        "backreferences and lookarounds are refused",
    )
    enabled: bool | None = None
    position: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)
    provider_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    provider_service_id: str | None = Field(default=None, max_length=64)
    provider_rate: PlainDecimal | None = Field(default=None, ge=0, max_digits=20, decimal_places=8)
    provider_dripfeed: bool | None = None
    pricing: Literal["fixed", "markup"] | None = Field(
        default=None,
        description="fixed: `rate` as set; markup: provider rate (converted) × "
        "price_multiplier + price_fixed, rounded up to price_step, kept by the catalog sync",
    )
    price_multiplier: PlainDecimal | None = Field(
        default=None, gt=0, max_digits=20, decimal_places=8
    )
    price_fixed: PlainDecimal | None = Field(default=None, ge=0, max_digits=20, decimal_places=8)
    price_step: PlainDecimal | None = Field(default=None, gt=0, max_digits=20, decimal_places=8)
    stuck_after_seconds: int | None = Field(
        default=None, ge=60, le=365 * 86400, description="no upstream progress for this long"
    )

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
            compile_pattern(value)  # PatternError (a ValueError) says why RE2 refuses it
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
    category_id: int = Field(ge=1, le=MAX_ID)
    name: str = Field(min_length=1, max_length=300)
    type: str = "Default"
    rate: PlainDecimal = Field(ge=0, max_digits=20, decimal_places=8)
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
    name_ru: str | None = None
    description_ru: str | None = None
    type: str
    rate: PlainDecimal
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
    provider_rate: PlainDecimal | None = None
    provider_dripfeed: bool = False
    pricing: str = "fixed"
    price_multiplier: PlainDecimal | None = None
    price_fixed: PlainDecimal | None = None
    price_step: PlainDecimal | None = None
    held: str | None = Field(
        default=None, description="why the catalog sync took it off sale, if it did"
    )
    pending_type: str | None = Field(
        default=None, description="the provider's new type, waiting for confirm-type"
    )
    stuck_after_seconds: int | None = None
    deleted_at: datetime | None = None


class BackupIn(AdminInput):
    model_config = example(provider_id=2, provider_service_id="17", provider_rate="0.45")
    provider_id: int = Field(ge=1, le=MAX_ID)
    provider_service_id: str = Field(min_length=1, max_length=64)
    provider_rate: PlainDecimal | None = Field(
        default=None, ge=0, max_digits=20, decimal_places=8, description="its cost per 1000"
    )


class BackupsIn(AdminInput):
    model_config = example(
        backups=[{"provider_id": 2, "provider_service_id": "17", "provider_rate": "0.45"}]
    )
    backups: list[BackupIn] = Field(max_length=10, description="in the order they are tried")


class BackupOut(BaseModel):
    model_config = example(
        position=1, provider_id=2, provider_service_id="17", provider_rate="0.45000000"
    )
    position: int
    provider_id: int
    provider_service_id: str
    provider_rate: PlainDecimal | None
