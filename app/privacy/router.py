"""Operator endpoints for a user's personal data (under /admin/v1)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse

from app.http.audit import Audit
from app.http.context import ServicesDep
from app.http.paths import PathId
from app.http.tx import Tx
from app.money import plain
from app.privacy import service as privacy
from app.privacy.schemas import ErasedOut

admin_router = APIRouter(tags=["privacy"])


@admin_router.get(
    "/users/{user_id}/export",
    summary="Export everything held about a user (JSON)",
    description="Profile, API key prefixes (never keys), orders, refills, ledger, payments, "
    "referral rewards and the audit entries about the user. The export itself is audited.",
    response_model=dict[str, Any],
)
async def export_user(tx: Tx, audit: Audit, user_id: PathId) -> JSONResponse:
    data = await privacy.export_user(tx, user_id)
    await audit("user.export", "user", user_id)
    return JSONResponse(
        # Money stays exact: decimals as strings, never floats.
        jsonable_encoder(data, custom_encoder={Decimal: plain}),
        headers={"Content-Disposition": f'attachment; filename="user-{user_id}.json"'},
    )


@admin_router.delete(
    "/users/{user_id}",
    summary="Delete a user's personal data",
    description="Erases email, name, referral code, order links and fields, and gateway "
    "payloads; revokes the API keys. Money records (amounts, ledger, payments) are kept for "
    "the retention period (RETENTION_DAYS, 1 year) and purged by the daily retention job. "
    "409 while the user has active orders.",
)
async def erase_user(tx: Tx, audit: Audit, services: ServicesDep, user_id: PathId) -> ErasedOut:
    erased = await privacy.erase_user(tx, user_id)
    out = ErasedOut(
        user_id=user_id,
        orders_scrubbed=erased.orders_scrubbed,
        erased_at=erased.erased_at,
        purge_after=erased.erased_at + timedelta(days=services.settings.retention_days),
    )
    await audit("user.erase", "user", user_id, after=out)
    return out
