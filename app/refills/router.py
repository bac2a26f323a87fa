"""Operator endpoints for refills."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from app.http.audit import Audit
from app.http.auth import require
from app.http.paths import Limit, Offset, PathId, QueryId
from app.http.problems import get_or_404
from app.http.tx import Reader, Tx
from app.refills.models import REFILL_ACTIVE, Refill
from app.refills.schemas import RefillOut, RefillStatusIn
from app.refills.service import RefillFinished

admin_router = APIRouter(tags=["refills"])


@admin_router.get(
    "/refills", dependencies=[require("orders:read")], summary="List refills, newest first"
)
async def list_refills(
    session: Reader,
    limit: Limit = 100,
    offset: Offset = 0,
    user_id: QueryId | None = None,
    status_filter: Annotated[str | None, Query(alias="status")] = None,
) -> list[RefillOut]:
    stmt = select(Refill).order_by(Refill.id.desc()).limit(limit).offset(offset)
    if user_id is not None:
        stmt = stmt.where(Refill.user_id == user_id)
    if status_filter:
        stmt = stmt.where(Refill.status == status_filter)
    return [RefillOut.model_validate(r) for r in await session.scalars(stmt)]


@admin_router.post(
    "/refills/{refill_id}/status",
    dependencies=[require("orders:write")],
    summary="Set a refill's status",
    description="For refills handled by hand; a finished refill does not move.",
)
async def set_refill_status(
    tx: Tx, audit: Audit, refill_id: PathId, body: RefillStatusIn
) -> RefillOut:
    refill = await get_or_404(tx, Refill, refill_id, "Refill")
    if refill.status not in REFILL_ACTIVE:
        raise RefillFinished()
    before = RefillOut.model_validate(refill)
    refill.status = body.status
    await tx.flush()
    out = RefillOut.model_validate(refill)
    await audit("refill.status", "refill", refill_id, before=before, after=out)
    return out
