"""Status webhooks as the customer and operator APIs show them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.webhooks.models import WebhookEndpoint, WebhookEvent


class WebhookIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"url": "https://example.com/hook"}]}
    )
    url: str = Field(max_length=2000, description="empty removes the webhook")


class WebhookSetOut(BaseModel):
    webhook: str
    secret: str | None = Field(
        description="the signing secret (Standard Webhooks), shown in this answer only"
    )


class WebhookOut(BaseModel):
    webhook: str
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None


class DeliveryOut(BaseModel):
    id: int
    user_id: int
    type: str
    order_id: int | None
    refill_id: int | None
    payload: dict[str, Any]
    created_at: datetime
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None


def endpoint_out(endpoint: WebhookEndpoint | None) -> WebhookOut:
    if endpoint is None:
        return WebhookOut(webhook="", enabled=False, disabled_at=None, disabled_reason=None)
    return WebhookOut(
        webhook=endpoint.url,
        enabled=endpoint.enabled,
        disabled_at=endpoint.disabled_at,
        disabled_reason=endpoint.disabled_reason,
    )


def delivery_out(event: WebhookEvent) -> DeliveryOut:
    pending = event.delivered_at is None and event.failed_at is None
    return DeliveryOut(
        id=event.id,
        user_id=event.user_id,
        type=event.type,
        order_id=event.order_id,
        refill_id=event.refill_id,
        payload=event.payload,
        created_at=event.created_at,
        attempts=event.attempts,
        last_status=event.last_status,
        last_error=event.last_error,
        next_attempt_at=event.next_attempt_at if pending else None,
        delivered_at=event.delivered_at,
        failed_at=event.failed_at,
    )
