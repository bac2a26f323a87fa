"""Operator endpoints of the referral program (under /admin/v1)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from app.accounts.models import User
from app.admin.auth import require_admin
from app.admin.problems import Problem, get_or_404, problem_from
from app.audit.service import record
from app.context import get_context
from app.errors import DomainError
from app.referrals import service as referrals
from app.referrals.models import ReferralReward

router = APIRouter(prefix="/admin/v1", dependencies=[Depends(require_admin)])
Operator = Annotated[str, Depends(require_admin)]
Id = Annotated[int, Path(ge=1, le=2**63 - 1, description="id")]


class ReferrerIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"referral_code": "K3XQ7M2PLA"}]})
    referral_code: str = Field(min_length=1, max_length=16)


class ReferrerOut(BaseModel):
    user_id: int
    referred_by_id: int | None


class VoidIn(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "Deposit charged back"}]})
    reason: str = Field(min_length=1, max_length=300)


class RewardOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    referrer_id: int
    referred_id: int | None
    deposit_entry_id: int
    deposit_amount: Decimal
    share: Decimal
    amount: Decimal
    status: str
    created_at: datetime
    voided_at: datetime | None
    voided_by: str | None
    void_reason: str | None


@router.put(
    "/users/{user_id}/referrer",
    tags=["referrals"],
    summary="Attach a referrer by referral code",
    description="Only for a user without a referrer; a user cannot refer themselves, and two "
    "users cannot refer each other. Rewards apply to deposits from now on.",
)
async def set_referrer(
    request: Request, user_id: Id, body: ReferrerIn, operator: Operator
) -> ReferrerOut:
    async with get_context(request).db.transaction() as session:
        try:
            referrer_id = await referrals.set_referrer(session, user_id, body.referral_code)
        except DomainError as exc:
            raise problem_from(exc) from exc
        await record(
            session,
            actor=operator,
            action="user.referrer_set",
            entity="user",
            entity_id=user_id,
            before={"referred_by_id": None},
            after={"referred_by_id": referrer_id},
        )
    return ReferrerOut(user_id=user_id, referred_by_id=referrer_id)


@router.delete(
    "/users/{user_id}/referrer",
    tags=["referrals"],
    summary="Detach a user from their referrer",
    description="Future deposits reward nobody; rewards already paid stay (void them if needed).",
)
async def remove_referrer(request: Request, user_id: Id, operator: Operator) -> ReferrerOut:
    async with get_context(request).db.transaction() as session:
        user = await get_or_404(session, User, user_id, "User")
        if user.referred_by_id is None:
            raise Problem(404, "This user has no referrer")
        before = user.referred_by_id
        user.referred_by_id = None
        await session.flush()
        await record(
            session,
            actor=operator,
            action="user.referrer_remove",
            entity="user",
            entity_id=user_id,
            before={"referred_by_id": before},
            after={"referred_by_id": None},
        )
    return ReferrerOut(user_id=user_id, referred_by_id=None)


@router.get("/referral-rewards", tags=["referrals"], summary="Referral rewards, newest first")
async def list_rewards(
    request: Request,
    referrer_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    referred_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    status: Annotated[str | None, Query(pattern="^(credited|voided)$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[RewardOut]:
    stmt = select(ReferralReward).order_by(ReferralReward.id.desc()).limit(limit).offset(offset)
    if referrer_id is not None:
        stmt = stmt.where(ReferralReward.referrer_id == referrer_id)
    if referred_id is not None:
        stmt = stmt.where(ReferralReward.referred_id == referred_id)
    if status is not None:
        stmt = stmt.where(ReferralReward.status == status)
    async with get_context(request).db.session() as session:
        return [RewardOut.model_validate(r) for r in await session.scalars(stmt)]


@router.post(
    "/referral-rewards/{reward_id}/void",
    tags=["referrals"],
    summary="Void a referral reward",
    description="Takes the reward back from the referrer with an adjustment entry, once. "
    "409 when the referrer's balance no longer covers it.",
)
async def void_reward(
    request: Request, reward_id: Id, body: VoidIn, operator: Operator
) -> RewardOut:
    async with get_context(request).db.transaction() as session:
        try:
            reward = await referrals.void_reward(
                session, reward_id, operator=operator, reason=body.reason
            )
        except DomainError as exc:
            raise problem_from(exc) from exc
        out = RewardOut.model_validate(reward)
        await record(
            session,
            actor=operator,
            action="referral.void",
            entity="referral_reward",
            entity_id=reward_id,
            before={"status": "credited"},
            after=out.model_dump(mode="json"),
        )
    return out
