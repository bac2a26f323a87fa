"""The operator's view of the receipts (/admin/v1/receipts)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.http.auth import require
from app.http.paths import Limit, Offset, QueryId
from app.http.tx import Reader
from app.receipts import service as receipts
from app.receipts.schemas import ReceiptOut

admin_router = APIRouter(tags=["payments"])
STATUSES = "^(pending|registered|cancel_pending|cancelled|gateway|failed)$"


@admin_router.get(
    "/receipts",
    dependencies=[require("payments:read")],
    summary="Receipts of credited deposits, newest first",
    description="One per credited deposit (FISCAL_BACKEND): its invoice (`payment_id`), "
    "status and the tax service's link once registered.",
)
async def list_receipts(
    session: Reader,
    user_id: QueryId | None = None,
    payment_id: QueryId | None = None,
    status: Annotated[str | None, Query(pattern=STATUSES)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[ReceiptOut]:
    where = receipts.ReceiptSearch(user_id=user_id, status=status, payment_id=payment_id)
    found = await receipts.search(session, where, limit=limit, offset=offset)
    return [ReceiptOut.model_validate(r) for r in found]
