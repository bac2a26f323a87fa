"""The referral program: rewards for referrers, credited and voided through the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import USER_ACTIVE, User
from app.accounts.service import referrer_for_code
from app.db import utcnow
from app.errors import Conflict, DomainError, NotFound
from app.ledger import service as ledger
from app.referrals.models import REWARD_CREDITED, REWARD_VOIDED, ReferralReward

REWARD_PLACES = Decimal("0.00001")


class NoReferrer(NotFound):
    http_status = 404
    message = "This user has no referrer"


class SelfReferral(DomainError):
    http_status = 422
    message = "A user cannot refer themselves"


async def reward_deposit(
    session: AsyncSession,
    *,
    share: Decimal,
    user_id: int,
    deposit_entry_id: int,
    amount: Decimal,
) -> ReferralReward | None:
    """Credit the referrer of `user_id` their share of a deposit, once per deposit entry.

    Nothing happens without a referrer, for a referrer who is blocked or erased, or when
    the share rounds down to nothing.
    """
    if share <= 0:
        return None
    referrer_id = await session.scalar(select(User.referred_by_id).where(User.id == user_id))
    if referrer_id is None:
        return None
    referrer = await session.scalar(
        select(User.id).where(
            User.id == referrer_id, User.status == USER_ACTIVE, User.deleted_at.is_(None)
        )
    )
    if referrer is None:
        return None
    reward = (amount * share).quantize(REWARD_PLACES, ROUND_DOWN)
    if reward <= 0:
        return None
    movement = await ledger.credit(
        session,
        user_id=referrer_id,
        amount=reward,
        kind="referral",
        reason=f"Referral reward: deposit of user #{user_id}",
        idempotency_key=f"referral:{deposit_entry_id}",
    )
    if movement is None:
        return None
    row = ReferralReward(
        referrer_id=referrer_id,
        referred_id=user_id,
        deposit_entry_id=deposit_entry_id,
        deposit_amount=amount,
        share=share,
        amount=reward,
        ledger_entry_id=movement.entry_id,
    )
    session.add(row)
    await session.flush()
    return row


async def void_reward(
    session: AsyncSession, reward_id: int, *, operator: str, reason: str
) -> ReferralReward:
    """Take a reward back (fraud, a reversed deposit): an adjustment entry, once.

    The referrer's balance must still cover it; otherwise NotEnoughFunds, and the operator
    decides (adjust with credit, or block the account).
    """
    reward = await session.scalar(
        select(ReferralReward).where(ReferralReward.id == reward_id).with_for_update()
    )
    if reward is None:
        raise NotFound("Referral reward not found")
    if reward.status != REWARD_CREDITED:
        raise Conflict("This reward was already voided")
    movement = await ledger.adjust(
        session,
        user_id=reward.referrer_id,
        amount=-reward.amount,
        kind="adjustment",
        reason=f"Referral reward #{reward.id} voided: {reason}",
        operator=operator,
    )
    reward.status = REWARD_VOIDED
    reward.voided_at = utcnow()
    reward.voided_by = operator
    reward.void_reason = reason
    reward.void_entry_id = movement.entry_id
    await session.flush()
    return reward


async def set_referrer(session: AsyncSession, user_id: int, code: str) -> int:
    """Attach a referrer to a user who has none yet; returns the referrer's id."""
    user = await session.scalar(select(User).where(User.id == user_id).with_for_update())
    if user is None:
        raise NotFound("User not found")
    if user.referred_by_id is not None:
        raise Conflict("This user already has a referrer")
    referrer_id = await referrer_for_code(session, code)
    if referrer_id == user_id:
        raise SelfReferral()
    # Two accounts referring each other is the usual shape of self-referral.
    if await session.scalar(select(User.referred_by_id).where(User.id == referrer_id)) == user_id:
        raise SelfReferral("Two users cannot refer each other")
    user.referred_by_id = referrer_id
    await session.flush()
    return referrer_id


@dataclass(frozen=True)
class ReferralSummary:
    code: str | None
    signups: int
    # (month "YYYY-MM", credited rewards of that month), newest month first.
    monthly: list[tuple[str, Decimal]]
    rewards: list[ReferralReward]


async def summary(session: AsyncSession, user_id: int, *, limit: int = 100) -> ReferralSummary:
    """What a referrer sees: the code, sign-ups, credited earnings per month, rewards."""
    code = await session.scalar(select(User.referral_code).where(User.id == user_id))
    signups = await session.scalar(
        select(func.count(User.id)).where(User.referred_by_id == user_id)
    )
    month = func.to_char(func.date_trunc("month", ReferralReward.created_at), "YYYY-MM")
    monthly = (
        await session.execute(
            select(month, func.sum(ReferralReward.amount))
            .where(ReferralReward.referrer_id == user_id, ReferralReward.status == REWARD_CREDITED)
            .group_by(month)
            .order_by(month.desc())
        )
    ).all()
    rewards = await session.scalars(
        select(ReferralReward)
        .where(ReferralReward.referrer_id == user_id)
        .order_by(ReferralReward.id.desc())
        .limit(limit)
    )
    return ReferralSummary(
        code=code,
        signups=int(signups or 0),
        monthly=[(str(m), Decimal(s)) for m, s in monthly],
        rewards=list(rewards),
    )


async def list_rewards(
    session: AsyncSession,
    *,
    referrer_id: int | None = None,
    referred_id: int | None = None,
    status: str | None = None,
    limit: int,
    offset: int,
) -> list[ReferralReward]:
    """Referral rewards matching the filters, newest first."""
    stmt = select(ReferralReward).order_by(ReferralReward.id.desc()).limit(limit).offset(offset)
    if referrer_id is not None:
        stmt = stmt.where(ReferralReward.referrer_id == referrer_id)
    if referred_id is not None:
        stmt = stmt.where(ReferralReward.referred_id == referred_id)
    if status is not None:
        stmt = stmt.where(ReferralReward.status == status)
    return list(await session.scalars(stmt))
