"""Refills as the operator API shows them. Money as exact decimal strings."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from app.http.schemas import AdminInput, example


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


class RefillStatusIn(AdminInput):
    model_config = example(status="Completed")
    status: str = Field(pattern="^(In progress|Completed|Rejected)$")
