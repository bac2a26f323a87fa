"""Orders as the operator API shows them. Money as exact decimal strings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from app.http.schemas import AdminInput, PlainDecimal, example
from app.ledger.schemas import LedgerEntryOut
from app.orders.history import SentRequest


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
    charge: PlainDecimal
    refunded: PlainDecimal
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
    anomaly: list[dict[str, str]] | None = Field(
        default=None,
        description="the last provider answer that could not be applied, "
        "as [{kind, field, value}] (kind: out_of_range, unknown_status, "
        "unreadable_remains, duplicate_order_id)",
    )
    anomaly_at: datetime | None = None


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


class SentRequestOut(BaseModel):
    model_config = example(
        fields={"action": "add", "service": "102", "link": "https://x.com/a", "quantity": "1000"},
        provider_id=1,
        sent_at="2026-01-01T00:00:00Z",
    )
    fields: dict[str, str] = Field(description="the form fields sent upstream, without the key")
    provider_id: int | None
    sent_at: datetime = Field(description="when the attempt was recorded, just before the call")

    @classmethod
    def of(cls, sent: SentRequest | None) -> SentRequestOut | None:
        if sent is None:
            return None
        return cls(fields=sent.fields, provider_id=sent.provider_id, sent_at=sent.at)


class OrderDetail(OrderOut):
    model_config = example(id=1, status="Partial", upstream_history=[], ledger=[], runs_of=[])
    params: dict[str, Any] = {}
    sent_request: SentRequestOut | None = Field(
        default=None, description="the exact request of the latest attempt upstream"
    )
    upstream_history: list[EventOut]
    ledger: list[LedgerEntryOut]
    runs_of: list[OrderOut] = Field(default=[], description="drip-feed runs")


class OrderStatusIn(AdminInput):
    model_config = example(status="Partial", start_count=3572, remains=157)
    status: str = Field(pattern="^(In progress|Processing|Completed|Partial|Canceled)$")
    start_count: int | None = Field(default=None, ge=0, le=10**15)
    remains: int | None = Field(default=None, ge=-(10**15), le=10**15)
