"""Operator endpoints of the ledger: entries, the invariant check, adjustments."""

from __future__ import annotations

from fastapi import APIRouter

from app.accounts import service as accounts
from app.http.audit import Audit
from app.http.auth import require
from app.http.paths import Limit, Offset, PathId, QueryId
from app.http.tx import Reader, Tx
from app.ledger import service as ledger
from app.ledger.schemas import AdjustIn, InvariantOut, LedgerEntryOut, MovementOut

admin_router = APIRouter(tags=["ledger"])


@admin_router.get(
    "/ledger", dependencies=[require("ledger:read")], summary="Ledger entries, newest first"
)
async def list_ledger(
    session: Reader,
    limit: Limit = 100,
    offset: Offset = 0,
    user_id: QueryId | None = None,
    kind: str | None = None,
    order_id: QueryId | None = None,
) -> list[LedgerEntryOut]:
    entries = await ledger.list_entries(
        session, limit=limit, offset=offset, user_id=user_id, kind=kind, order_id=order_id
    )
    return [LedgerEntryOut.model_validate(e) for e in entries]


@admin_router.get(
    "/ledger/check",
    dependencies=[require("ledger:read")],
    summary="Check the ledger invariants",
    description="balance = sum of entries, balances above their floor, per-order "
    "charged − refunded ≥ 0 and matching the ledger. 200 with ok=false on violations.",
)
async def check_ledger(session: Reader) -> InvariantOut:
    report = await ledger.check_invariants(session)
    return InvariantOut(
        ok=report.ok,
        checked_users=report.checked_users,
        checked_orders=report.checked_orders,
        violations=report.violations,
    )


@admin_router.post(
    "/users/{user_id}/adjust",
    dependencies=[require("balances:adjust")],
    tags=["users"],
    summary="Adjust a balance",
    description="A signed correction with a reason; recorded as an adjustment entry.",
)
async def adjust(tx: Tx, audit: Audit, user_id: PathId, body: AdjustIn) -> MovementOut:
    await accounts.get_user(tx, user_id)
    movement = await ledger.adjust(
        tx,
        user_id=user_id,
        amount=body.amount,
        kind="adjustment",
        reason=body.reason,
        operator=audit.actor,
        allow_negative=body.allow_negative,
    )
    await audit("user.adjust", "user", user_id, after=body)
    return MovementOut(user_id=user_id, balance=movement.balance_after)
