"""The operator's own trail: the audit log, read back (every change writes it through
app/http/audit.py in the change's transaction, naming who acted), filtered by what changed
or by who changed it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.audit import service as audit
from app.http.auth import require
from app.http.paths import Limit, Offset, QueryId
from app.http.schemas import example
from app.http.tx import Reader

admin_router = APIRouter(tags=["audit"])


class AuditOut(BaseModel):
    model_config = example(
        id=1,
        actor="ann@example.com",
        staff_id=2,
        action="user.topup",
        entity="user",
        entity_id="1",
        before=None,
        after={"amount": "50"},
        created_at="2026-01-01T00:00:00Z",
    )
    id: int
    actor: str = Field(description='who acted: a staff member\'s email, "admin token", "cli"…')
    staff_id: int | None = Field(description="the staff member who acted, when one did")
    action: str
    entity: str
    entity_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    created_at: datetime


@admin_router.get(
    "/audit",
    dependencies=[require("audit:read")],
    summary="The audit log, newest first",
    description="Filters: `entity` and `entity_id` (what changed), `staff_id` (the staff "
    "member who acted) or `actor` (as shown, e.g. `admin token`).",
)
async def list_audit(
    session: Reader,
    limit: Limit = 100,
    offset: Offset = 0,
    entity: str | None = None,
    entity_id: str | None = None,
    staff_id: QueryId | None = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
) -> list[AuditOut]:
    entries = await audit.list_entries(
        session,
        limit=limit,
        offset=offset,
        entity=entity,
        entity_id=entity_id,
        staff_id=staff_id,
        actor=actor,
    )
    return [AuditOut.model_validate(a) for a in entries]
