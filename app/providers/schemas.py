"""Providers as the operator API shows them (their API keys never leave the database)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from app.db import MAX_ID
from app.http.schemas import AdminInput, PlainDecimal, example

BALANCE_THRESHOLD = (
    "alert once when the balance read falls below this, in the provider's currency "
    "(again only after it has recovered); null: never"
)
SYNC_MINUTES = "sync the catalog every this many minutes (0: only on demand)"
PRICING_MAX = 500  # services given a rule in one call


class ProviderIn(AdminInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Upstream panel",
                    "url": "https://provider.example/api/v2",
                    "api_key": "their-api-key",
                    "currency": "USD",
                }
            ]
        }
    )
    name: str = Field(min_length=1, max_length=200)
    url: HttpUrl = Field(description="the provider's API v2 endpoint")
    api_key: str = Field(min_length=1, max_length=500, description="stored encrypted, never shown")
    currency: str = Field(default="USD", min_length=3, max_length=3)
    enabled: bool = True
    balance_threshold: PlainDecimal | None = Field(
        default=None, ge=0, max_digits=20, decimal_places=8, description=BALANCE_THRESHOLD
    )
    sync_minutes: int = Field(default=60, ge=0, le=7 * 24 * 60, description=SYNC_MINUTES)


class ProviderPatch(AdminInput):
    model_config = ConfigDict(json_schema_extra={"examples": [{"enabled": False}]})
    name: str | None = Field(default=None, min_length=1, max_length=200)
    url: HttpUrl | None = None
    api_key: str | None = Field(default=None, min_length=1, max_length=500)
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    enabled: bool | None = None
    balance_threshold: PlainDecimal | None = Field(
        default=None, ge=0, max_digits=20, decimal_places=8, description=BALANCE_THRESHOLD
    )
    sync_minutes: int | None = Field(default=None, ge=0, le=7 * 24 * 60, description=SYNC_MINUTES)
    request_id: bool | None = Field(
        default=None,
        description="the provider takes request ids on `add` (setting any capability pins "
        "them: the probe at catalog import no longer changes them)",
    )
    status_by_request_id: bool | None = None
    webhooks: bool | None = None


class ProviderOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 1,
                    "name": "Upstream panel",
                    "url": "https://provider.example/api/v2",
                    "currency": "USD",
                    "enabled": True,
                    "last_balance": "120.50000",
                    "last_balance_at": "2026-01-01T00:00:00Z",
                    "request_id": True,
                    "status_by_request_id": True,
                    "webhooks": False,
                    "capabilities_pinned": False,
                    "capabilities_checked_at": "2026-01-01T00:00:00Z",
                    "webhook_registered": False,
                }
            ]
        }
    )
    id: int
    name: str
    url: str
    currency: str
    enabled: bool
    last_balance: PlainDecimal | None
    last_balance_at: datetime | None
    balance_threshold: PlainDecimal | None = None
    sync_minutes: int = 60
    last_sync_at: datetime | None = None
    last_sync_error: str | None = None
    request_id: bool = Field(description="our `add`s carry request ids (SPEC §4)")
    status_by_request_id: bool
    webhooks: bool
    capabilities_pinned: bool = Field(description="set by the operator, not by the probe")
    capabilities_checked_at: datetime | None
    webhook_registered: bool = Field(
        description="our status webhook is registered with it (polling then runs slower)"
    )


class BalanceOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"provider_id": 1, "balance": "120.5", "currency": "USD"}]}
    )
    provider_id: int
    balance: PlainDecimal
    currency: str


class ImportIn(AdminInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"multiplier": "1.5", "fixed": "0.10", "update_rates": True}]
        }
    )
    multiplier: PlainDecimal = Field(
        default=Decimal("1.5"), gt=0, description="our rate = theirs × this"
    )
    fixed: PlainDecimal = Field(default=Decimal(0), ge=0, description="… + this, per 1000")
    step: PlainDecimal = Field(
        default=Decimal("0.00001"), gt=0, description="our rate is rounded up to a multiple"
    )
    update_rates: bool = Field(default=True, description="also reprice already imported services")


class PricingIn(AdminInput):
    """A pricing rule given to several services at once."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"service_ids": [1, 2], "multiplier": "1.4", "fixed": "0.05"}]
        }
    )
    service_ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(
        min_length=1, max_length=PRICING_MAX
    )
    multiplier: PlainDecimal = Field(gt=0, max_digits=20, decimal_places=8)
    fixed: PlainDecimal = Field(default=Decimal(0), ge=0, max_digits=20, decimal_places=8)
    step: PlainDecimal = Field(default=Decimal("0.00001"), gt=0, max_digits=20, decimal_places=8)


class ImportOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"created": 12, "updated": 3, "disabled": 1}]}
    )
    created: int
    updated: int
    disabled: int


class SyncOut(BaseModel):
    model_config = example(
        provider_id=1,
        ok=True,
        error=None,
        created=0,
        updated=12,
        disabled=1,
        changes=3,
        balance="120.50000",
    )
    provider_id: int
    ok: bool
    error: str | None
    created: int
    updated: int
    disabled: int
    changes: int
    balance: PlainDecimal | None


class ChangeOut(BaseModel):
    model_config = example(
        id=1,
        provider_id=1,
        provider_service_id="17",
        service_id=4,
        kind="rate",
        before="0.40",
        after="0.48",
        created_at="2026-01-01T00:00:00Z",
    )
    id: int
    provider_id: int
    provider_service_id: str
    service_id: int | None
    kind: str
    before: str | None
    after: str | None
    created_at: datetime
