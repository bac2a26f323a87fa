"""Alerts as the operator API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.http.schemas import example


class AlertOut(BaseModel):
    model_config = example(
        id=1,
        kind="provider_balance_low",
        subject="provider",
        subject_id=2,
        message="provider 2 balance 4.50000 USD is below its threshold 10",
        detail={"balance": "4.50000", "threshold": "10"},
        open=True,
        resolved_at=None,
        acknowledged_at=None,
        acknowledged_by=None,
        created_at="2026-01-01T00:00:00Z",
    )
    id: int
    kind: str
    subject: str
    subject_id: int
    message: str
    detail: dict[str, Any]
    open: bool = Field(description="its condition lasts (an episode alerted once)")
    resolved_at: datetime | None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = Field(default=None, description="the operator who saw it")
    created_at: datetime
