"""Operator endpoints for a user's personal data (under /admin/v1)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from app.admin.auth import require_admin
from app.admin.problems import problem_from
from app.audit.service import record
from app.context import get_context
from app.errors import DomainError
from app.privacy import service as privacy

router = APIRouter(prefix="/admin/v1", dependencies=[Depends(require_admin)])
Operator = Annotated[str, Depends(require_admin)]
UserId = Annotated[int, Path(ge=1, le=2**63 - 1, description="user id")]


class ErasedOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": 7,
                    "orders_scrubbed": 12,
                    "erased_at": "2026-01-01T00:00:00Z",
                    "purge_after": "2027-01-01T00:00:00Z",
                }
            ]
        }
    )
    user_id: int
    orders_scrubbed: int
    erased_at: datetime
    purge_after: datetime


@router.get(
    "/users/{user_id}/export",
    tags=["privacy"],
    summary="Export everything held about a user (JSON)",
    description="Profile, API key prefixes (never keys), orders, refills, ledger, payments, "
    "referral rewards and the audit entries about the user. The export itself is audited.",
    response_model=dict[str, Any],
)
async def export_user(request: Request, user_id: UserId, operator: Operator) -> JSONResponse:
    async with get_context(request).db.transaction() as session:
        try:
            data = await privacy.export_user(session, user_id)
        except DomainError as exc:
            raise problem_from(exc) from exc
        await record(
            session, actor=operator, action="user.export", entity="user", entity_id=user_id
        )
    return JSONResponse(
        # Money stays exact: decimals as strings, never floats.
        jsonable_encoder(data, custom_encoder={Decimal: str}),
        headers={"Content-Disposition": f'attachment; filename="user-{user_id}.json"'},
    )


@router.delete(
    "/users/{user_id}",
    tags=["privacy"],
    summary="Delete a user's personal data",
    description="Erases email, name, referral code, order links and fields, and gateway "
    "payloads; revokes the API keys. Money records (amounts, ledger, payments) are kept for "
    "the retention period (RETENTION_DAYS, 1 year) and purged by the daily retention job. "
    "409 while the user has active orders.",
)
async def erase_user(request: Request, user_id: UserId, operator: Operator) -> ErasedOut:
    ctx = get_context(request)
    async with ctx.db.transaction() as session:
        try:
            erased = await privacy.erase_user(session, user_id)
        except DomainError as exc:
            raise problem_from(exc) from exc
        out = ErasedOut(
            user_id=user_id,
            orders_scrubbed=erased.orders_scrubbed,
            erased_at=erased.erased_at,
            purge_after=erased.erased_at + timedelta(days=ctx.settings.retention_days),
        )
        await record(
            session,
            actor=operator,
            action="user.erase",
            entity="user",
            entity_id=user_id,
            after=out.model_dump(mode="json"),
        )
    return out
