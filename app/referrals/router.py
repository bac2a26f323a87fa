"""Operator endpoints of the referral program (under /admin/v1)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.accounts import service as accounts
from app.http.audit import Audit
from app.http.auth import require
from app.http.context import ServicesDep
from app.http.paths import Limit, Offset, PathId, QueryId
from app.http.tx import Reader, Tx
from app.referrals import service as referrals
from app.referrals.models import PAYOUT_PENDING
from app.referrals.schemas import PayoutOut, ReferrerIn, ReferrerOut, RejectIn, RewardOut, VoidIn

admin_router = APIRouter(tags=["referrals"])


@admin_router.put(
    "/users/{user_id}/referrer",
    dependencies=[require("users:write")],
    summary="Attach a referrer by referral code",
    description="Only for a user without a referrer; a user cannot refer themselves, and two "
    "users cannot refer each other. Rewards apply to deposits from now on.",
)
async def set_referrer(tx: Tx, audit: Audit, user_id: PathId, body: ReferrerIn) -> ReferrerOut:
    referrer_id = await referrals.set_referrer(tx, user_id, body.referral_code)
    await audit(
        "user.referrer_set",
        "user",
        user_id,
        before={"referred_by_id": None},
        after={"referred_by_id": referrer_id},
    )
    return ReferrerOut(user_id=user_id, referred_by_id=referrer_id)


@admin_router.delete(
    "/users/{user_id}/referrer",
    dependencies=[require("users:write")],
    summary="Detach a user from their referrer",
    description="Future deposits reward nobody; rewards already paid stay (void them if needed).",
)
async def remove_referrer(tx: Tx, audit: Audit, user_id: PathId) -> ReferrerOut:
    user = await accounts.get_user(tx, user_id)
    if user.referred_by_id is None:
        raise referrals.NoReferrer()
    before = user.referred_by_id
    user.referred_by_id = None
    await tx.flush()
    await audit(
        "user.referrer_remove",
        "user",
        user_id,
        before={"referred_by_id": before},
        after={"referred_by_id": None},
    )
    return ReferrerOut(user_id=user_id, referred_by_id=None)


@admin_router.get(
    "/referral-rewards",
    dependencies=[require("ledger:read")],
    summary="Referral rewards, newest first",
)
async def list_rewards(
    session: Reader,
    referrer_id: QueryId | None = None,
    referred_id: QueryId | None = None,
    status: Annotated[str | None, Query(pattern="^(credited|accrued|voided|held)$")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[RewardOut]:
    found = await referrals.list_rewards(
        session,
        referrer_id=referrer_id,
        referred_id=referred_id,
        status=status,
        limit=limit,
        offset=offset,
    )
    return [RewardOut.model_validate(r) for r in found]


@admin_router.post(
    "/referral-rewards/{reward_id}/void",
    dependencies=[require("balances:adjust")],
    summary="Void a referral reward",
    description="Takes the reward back from the referrer with an adjustment entry, once. "
    "409 when the referrer's balance no longer covers it. An accrued reward (not yet paid "
    "out) is voided without a movement; one in a payout request under review is refused "
    "(409) until that request is decided. A held reward (never credited) is voided "
    "without a movement.",
)
async def void_reward(tx: Tx, audit: Audit, reward_id: PathId, body: VoidIn) -> RewardOut:
    before = (await referrals.get_reward(tx, reward_id)).status
    reward = await referrals.void_reward(tx, reward_id, operator=audit.actor, reason=body.reason)
    out = RewardOut.model_validate(reward)
    await audit("referral.void", "referral_reward", reward_id, before={"status": before}, after=out)
    return out


@admin_router.get(
    "/referral-payouts",
    dependencies=[require("ledger:read")],
    summary="Referral payout requests, newest first",
    description="With AFFILIATE_PAYOUTS=review, `pending` requests wait for approval.",
)
async def list_payouts(
    session: Reader,
    user_id: QueryId | None = None,
    status: Annotated[str | None, Query(pattern="^(pending|paid|rejected)$")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[PayoutOut]:
    found = await referrals.list_payouts(
        session, user_id=user_id, status=status, limit=limit, offset=offset
    )
    return [PayoutOut.model_validate(p) for p in found]


@admin_router.post(
    "/referral-payouts/{payout_id}/approve",
    dependencies=[require("balances:adjust")],
    summary="Approve a payout request: its amount is credited to the referrer's balance",
    description="Once: a request already decided answers 409.",
)
async def approve_payout(tx: Tx, audit: Audit, payout_id: PathId) -> PayoutOut:
    out = PayoutOut.model_validate(
        await referrals.approve_payout(tx, payout_id, operator=audit.actor)
    )
    await audit(
        "referral.payout_approve",
        "referral_payout",
        payout_id,
        before={"status": PAYOUT_PENDING},
        after=out,
    )
    return out


@admin_router.post(
    "/referral-payouts/{payout_id}/reject",
    dependencies=[require("balances:adjust")],
    summary="Reject a payout request: nothing is credited, its rewards are available again",
    description="Once: a request already decided answers 409. Void its rewards afterwards "
    "if they should never be paid.",
)
async def reject_payout(tx: Tx, audit: Audit, payout_id: PathId, body: RejectIn) -> PayoutOut:
    out = PayoutOut.model_validate(
        await referrals.reject_payout(tx, payout_id, operator=audit.actor, reason=body.reason)
    )
    await audit(
        "referral.payout_reject",
        "referral_payout",
        payout_id,
        before={"status": PAYOUT_PENDING},
        after=out,
    )
    return out


@admin_router.post(
    "/referral-rewards/{reward_id}/release",
    dependencies=[require("balances:adjust")],
    summary="Release a held referral reward (credit it to the referrer)",
    description="A reward held for review (a shared address or browser, the referrer's own "
    "mailbox: `hold_reason`) is credited once the operator finds nothing wrong (with "
    "AFFILIATE_PAYOUTS request or review it accrues for the next payout instead). 409 when "
    "it is not held.",
)
async def release_reward(
    tx: Tx, audit: Audit, services: ServicesDep, reward_id: PathId
) -> RewardOut:
    accrue = services.settings.affiliate_payouts != "balance"
    reward = await referrals.release_reward(tx, reward_id, operator=audit.actor, accrue=accrue)
    out = RewardOut.model_validate(reward)
    await audit(
        "referral.release", "referral_reward", reward_id, before={"status": "held"}, after=out
    )
    return out
