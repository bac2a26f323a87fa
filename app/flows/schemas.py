"""What the cross-domain operator endpoints take and answer."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from app.http.schemas import AdminInput, PlainDecimal


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


class MarkSentIn(AdminInput):
    model_config = ConfigDict(json_schema_extra={"examples": [{"provider_order_id": "998877"}]})
    provider_order_id: str = Field(min_length=1, max_length=64)


class ReviewResult(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"order_id": 42, "action": "resend"}]}
    )
    order_id: int
    action: str
