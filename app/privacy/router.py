"""Operator endpoints for a user's personal data (under /admin/v1)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.db import utcnow
from app.http.audit import Audit
from app.http.auth import Operator, require
from app.http.context import ServicesDep
from app.http.paths import PathId
from app.http.tx import Reader, Tx
from app.privacy import service as privacy
from app.privacy.schemas import DeletionCompletedOut, DeletionRequestOut, ErasedOut

admin_router = APIRouter(tags=["privacy"])


@admin_router.get(
    "/users/{user_id}/export",
    dependencies=[require("privacy:read")],
    summary="Export everything held about a user (JSON)",
    description="Profile, API key prefixes (never keys), orders, refills, ledger, payments, "
    "referral rewards and the audit entries about the user. The export itself is audited.",
    response_model=dict[str, Any],
)
async def export_user(tx: Tx, audit: Audit, user_id: PathId) -> JSONResponse:
    data = await privacy.export_user(tx, user_id)
    await audit("user.export", "user", user_id)
    return JSONResponse(
        privacy.export_json(data),
        headers={"Content-Disposition": f'attachment; filename="user-{user_id}.json"'},
    )


@admin_router.delete(
    "/users/{user_id}",
    dependencies=[require("privacy:write")],
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


def deletion_out(request: object) -> DeletionRequestOut:
    out = DeletionRequestOut.model_validate(request)
    return out.model_copy(update={"overdue": out.completed_at is None and out.deadline < utcnow()})


@admin_router.get(
    "/privacy/deletion-requests",
    dependencies=[require("privacy:read")],
    summary="Open deletion requests made by users, the nearest deadline first",
    description="Each is due by its `deadline` (CLIENT_DELETION_DAYS after the request); "
    "`overdue` ones are also counted by the metric smm_deletion_requests_overdue.",
)
async def deletion_requests(db: Reader) -> list[DeletionRequestOut]:
    return [deletion_out(r) for r in await privacy.open_deletion_requests(db)]


@admin_router.post(
    "/privacy/deletion-requests/{request_id}/complete",
    dependencies=[require("privacy:write")],
    summary="Complete a deletion request: erase the user's personal data",
    description="Runs the same erasure as DELETE /admin/v1/users/{id} (409 while the user "
    "has active orders) and closes the request.",
)
async def complete_deletion(
    tx: Tx, audit: Audit, services: ServicesDep, operator: Operator, request_id: PathId
) -> DeletionCompletedOut:
    request, erased = await privacy.complete_deletion(tx, request_id, operator.name)
    out = DeletionCompletedOut(
        request=deletion_out(request),
        erased=ErasedOut(
            user_id=erased.user_id,
            orders_scrubbed=erased.orders_scrubbed,
            erased_at=erased.erased_at,
            purge_after=erased.erased_at + timedelta(days=services.settings.retention_days),
        ),
    )
    await audit("user.deletion_complete", "deletion_request", request_id, after=out)
    return out
