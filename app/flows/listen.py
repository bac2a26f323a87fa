"""Listening to a provider's status webhooks (SPEC §4): each event is verified with the
secret the provider gave us when we registered (Standard Webhooks signature) and applied
through the same status path as polling (`orders.service.apply_status`, the rule the
sync's statements are twins of): idempotent, and a finished order never moves. Polling
goes on, slower, as the safety net (flows/sync.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from standardwebhooks import Webhook, WebhookVerificationError

from app.db import Database
from app.flows.sync import report_from
from app.orders.models import UP_SENT, Order
from app.orders.service import apply_status, refresh_parent
from app.providers.client import read_order_status
from app.providers.models import Provider
from app.providers.service import webhook_secret

log = logging.getLogger(__name__)


class NotVerified(Exception):
    """No registered secret, or the signature does not verify."""


@dataclass(frozen=True)
class Heard:
    applied: bool
    order_id: int | None = None


async def hear(
    db: Database, secret_keyring: str, provider_id: int, body: bytes, headers: Mapping[str, str]
) -> Heard:
    async with db.session() as session:
        provider = await session.get(Provider, provider_id)
    secret = webhook_secret(provider, secret_keyring) if provider is not None else None
    if secret is None:
        raise NotVerified()
    try:
        Webhook(secret).verify(body, dict(headers))
    except WebhookVerificationError as exc:
        raise NotVerified() from exc
    event = json.loads(body)
    if not isinstance(event, dict) or event.get("type") != "order.status":
        return Heard(False)  # refill events: the refill sync reads them
    report = report_from(read_order_status(event))
    provider_order_id = str(event.get("order", "")).strip()
    if report is None or not provider_order_id:
        return Heard(False)  # anomalous: polling flags it on the order
    async with db.transaction() as session:
        row = (
            await session.execute(
                select(Order.id, Order.parent_id).where(
                    Order.provider_id == provider_id,
                    Order.provider_order_id == provider_order_id,
                    Order.upstream_state == UP_SENT,
                )
            )
        ).first()
        if row is None:
            return Heard(False)
        order_id = int(row.id)
        changed = await apply_status(session, order_id, report, source="webhook")
        if changed and row.parent_id is not None:
            await refresh_parent(session, row.parent_id)
    log.info(
        "provider webhook applied",
        extra={"provider_id": provider_id, "order_id": order_id, "changed": changed},
    )
    return Heard(changed, order_id)
