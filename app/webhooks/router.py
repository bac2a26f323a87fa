"""Operator view of status webhooks: the delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.db import MAX_ID
from app.http.auth import require
from app.http.paths import Limit, Offset
from app.http.tx import Reader
from app.webhooks import service as webhooks
from app.webhooks.schemas import DeliveryOut, delivery_out

admin_router = APIRouter(tags=["webhooks"])


@admin_router.get(
    "/webhooks/deliveries",
    dependencies=[require("users:read")],
    summary="Status webhook deliveries, newest first",
)
async def list_deliveries(
    session: Reader,
    user_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[DeliveryOut]:
    rows = await webhooks.deliveries(session, user_id=user_id, limit=limit, offset=offset)
    return [delivery_out(e) for e in rows]
