"""The console's referral payout requests: the list (pending ones first to review) and the
operator's approval or rejection, through the functions and audit entries of
/admin/v1/referral-payouts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from app.console.listing import as_choice, as_id, shown, window
from app.console.render import CONSOLE, N_, Failure, Permit, Who, page, posted, redirect
from app.errors import DomainError
from app.http.paths import PathId
from app.http.problems import Problem
from app.referrals import service as referrals
from app.referrals.models import PAYOUT_PENDING, PAYOUT_STATUSES
from app.referrals.schemas import PayoutOut, RejectIn

router = APIRouter()
LedgerReader = Annotated[Who, Depends(Permit("ledger:read"))]
Deciding = Annotated[Who, Depends(Permit("balances:adjust"))]
Refusals = (DomainError, Problem, ValueError)
DONE = {"approved": N_("Approved: credited to the balance."), "rejected": N_("Rejected.")}


async def payouts_page(who: Who, failure: Failure | None = None, done: str = "") -> Response:
    q = who.request.query_params
    at = window(q.get("page"), None)
    given = {k: q.get(k, "")[:30] for k in ("user_id", "status")}
    async with who.services.db.session() as session:
        found = await referrals.list_payouts(
            session,
            user_id=as_id(given["user_id"]),
            status=as_choice(given["status"], PAYOUT_STATUSES),
            limit=at.limit,
            offset=at.offset,
        )
    return page(
        who,
        "payouts.html",
        failure.status if failure else 200,
        listed=shown(found, at),
        given=given,
        statuses=PAYOUT_STATUSES,
        mode=who.services.settings.affiliate_payouts,
        error=failure.message if failure else "",
        done=who._(DONE[done]) if done in DONE else "",
    )


@router.get("/referral-payouts")
async def payout_list(who: LedgerReader, done: str = "") -> Response:
    return await payouts_page(who, done=done)


@router.post("/referral-payouts/{payout_id}/approve")
async def approve(who: Deciding, payout_id: PathId) -> Response:
    await posted(who)
    try:
        async with who.acting() as (tx, audit):
            payout = await referrals.approve_payout(tx, payout_id, operator=audit.actor)
            out = PayoutOut.model_validate(payout)
            await audit(
                "referral.payout_approve",
                "referral_payout",
                payout_id,
                before={"status": PAYOUT_PENDING},
                after=out,
            )
    except Refusals as exc:
        return await payouts_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/referral-payouts?done=approved")


@router.post("/referral-payouts/{payout_id}/reject")
async def reject(who: Deciding, payout_id: PathId) -> Response:
    fields = await posted(who)
    try:
        body = RejectIn.model_validate({"reason": fields.get("reason", "").strip()})
        async with who.acting() as (tx, audit):
            payout = await referrals.reject_payout(
                tx, payout_id, operator=audit.actor, reason=body.reason
            )
            out = PayoutOut.model_validate(payout)
            await audit(
                "referral.payout_reject",
                "referral_payout",
                payout_id,
                before={"status": PAYOUT_PENDING},
                after=out,
            )
    except Refusals as exc:
        return await payouts_page(who, who.error(exc))
    return redirect(who, f"{CONSOLE}/referral-payouts?done=rejected")
