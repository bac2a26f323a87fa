"""The operator's own trail: the audit log, read back (every change writes it through
app/http/audit.py in the change's transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from app.audit.models import AuditEntry
from app.http.paths import Limit, Offset
from app.http.schemas import example
from app.http.tx import Reader

admin_router = APIRouter(tags=["audit"])


class AuditOut(BaseModel):
    model_config = example(
        id=1,
        actor="admin",
        action="user.topup",
        entity="user",
        entity_id="1",
        before=None,
        after={"amount": "50"},
        created_at="2026-01-01T00:00:00Z",
    )
    id: int
    actor: str
    action: str
    entity: str
    entity_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    created_at: datetime


@admin_router.get("/audit", summary="The audit log, newest first")
async def list_audit(
    session: Reader,
    limit: Limit = 100,
    offset: Offset = 0,
    entity: str | None = None,
    entity_id: str | None = None,
) -> list[AuditOut]:
    stmt = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    if entity:
        stmt = stmt.where(AuditEntry.entity == entity)
    if entity_id:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    return [AuditOut.model_validate(a) for a in await session.scalars(stmt)]
