"""What an order's upstream history tells an operator: the exact request its latest
attempt sent (recorded with the attempt, before the call, the API key aside)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from app.orders.models import UpstreamEvent


@dataclass(frozen=True)
class SentRequest:
    fields: dict[str, str]  # the form fields sent upstream, without the key
    provider_id: int | None
    at: datetime


async def last_sent_requests(
    session: AsyncSession, order_ids: Sequence[int]
) -> dict[int, SentRequest]:
    """The latest recorded `add` attempt of each order that has one."""
    if not order_ids:
        return {}
    rows = await session.execute(
        select(UpstreamEvent.order_id, UpstreamEvent.detail, UpstreamEvent.created_at)
        .where(
            UpstreamEvent.order_id.in_(order_ids),
            UpstreamEvent.action == "add",
            UpstreamEvent.outcome == "attempt",
        )
        .order_by(UpstreamEvent.order_id, UpstreamEvent.id.desc())
        .ext(distinct_on(UpstreamEvent.order_id))
    )
    found: dict[int, SentRequest] = {}
    for order_id, detail, at in rows:
        request = detail.get("request") if isinstance(detail, dict) else None
        if order_id is None or not isinstance(request, dict):
            continue  # attempts recorded before requests were kept
        found[order_id] = SentRequest(
            fields={str(k): str(v) for k, v in request.items()},
            provider_id=detail.get("provider_id"),
            at=at,
        )
    return found
