"""What the cross-domain operator endpoints take and answer."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.db import MAX_ID
from app.http.schemas import AdminInput, PlainDecimal
from app.orders.schemas import SentRequestOut


class ReviewOrder(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 42,
                    "user_id": 7,
                    "service_id": 3,
                    "provider_id": 1,
                    "link": "https://instagram.com/x",
                    "quantity": 1000,
                    "charge": "0.90000",
                    "attempts": 1,
                    "last_error": "read timeout",
                    "created_at": "2026-01-01T00:00:00Z",
                    "sent_request": {
                        "fields": {
                            "action": "add",
                            "service": "102",
                            "link": "https://instagram.com/x",
                            "quantity": "1000",
                        },
                        "provider_id": 1,
                        "sent_at": "2026-01-01T00:00:01Z",
                    },
                }
            ]
        }
    )
    id: int
    user_id: int
    service_id: int
    provider_id: int | None
    link: str
    quantity: int
    charge: PlainDecimal
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_request: SentRequestOut | None = Field(
        default=None, description="the exact request of the latest attempt (no key)"
    )


class MarkSentIn(AdminInput):
    model_config = ConfigDict(json_schema_extra={"examples": [{"provider_order_id": "998877"}]})
    provider_order_id: str = Field(min_length=1, max_length=64)


class ReviewResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"order_id": 42, "action": "resend"}]}
    )
    order_id: int
    action: str


class BulkReviewIn(AdminInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "action": "cancel",
                    "provider_id": 1,
                    "created_from": "2026-01-01T10:00:00Z",
                    "created_to": "2026-01-01T11:00:00Z",
                    "dry_run": True,
                }
            ]
        }
    )
    action: Literal["resend", "cancel"] = Field(
        description="resend: the provider surely did not create them; cancel: full refund"
    )
    provider_id: int = Field(ge=1, le=MAX_ID)
    created_from: datetime = Field(description="inclusive")
    created_to: datetime = Field(description="exclusive")
    dry_run: bool = Field(default=False, description="only list the orders it would take")

    @model_validator(mode="after")
    def window(self) -> BulkReviewIn:
        if self.created_from.tzinfo is None or self.created_to.tzinfo is None:
            raise ValueError("created_from and created_to need a time zone (e.g. Z)")
        if self.created_from >= self.created_to:
            raise ValueError("created_from must be before created_to")
        return self


class BulkReviewResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"action": "cancel", "dry_run": False, "order_ids": [42, 43]}]
        }
    )
    action: str
    dry_run: bool
    order_ids: list[int] = Field(description="the orders resolved (or, dry run, selected)")
    limited: bool = Field(
        default=False, description="the selection had more orders than one call takes (1000)"
    )


class ChargebackIn(AdminInput):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reason": "Card holder disputed the payment", "invoice_id": 17}]
        }
    )
    reason: str = Field(min_length=1, max_length=500)
    invoice_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="the disputed invoice"
    )


class ChargebackOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    chargeback_id: int
    user_id: int
    invoice_id: int | None
    reason: str
    source: str = Field(description="who reported it: the operator, or gateway:<name>")
    forfeited: PlainDecimal
    withdrawn: list[int] = Field(description="orders cancelled and refunded at once")
    cancel_requested: list[int] = Field(description="sent orders whose cancel goes upstream")
    receipt: str | None = Field(description="the disputed deposit's receipt status")
    at: datetime
    repeated: bool = Field(description="true: an earlier chargeback's result, nothing done")
