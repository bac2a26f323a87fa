"""The referral program: rewards for referrers, credited and voided through the ledger;
with AFFILIATE_PAYOUTS `request` or `review`, rewards accrue until the referrer asks for a
payout, paid at once or once the operator approves it.

A payout carries every reward accrued and not yet in a payout, so no reward is paid twice:
the referrer's row is locked while they are gathered, a payout is credited once (its
ledger entry's idempotency key), and a reward leaves a payout only when the operator
rejects it (it is available again).

Abuse (ToS 7.1–7.2, ToU 3.5) holds a reward for the operator instead of crediting or
accruing it: the referred account signed up from an address or a browser (device cookie)
the referrer used, or its mailbox is the referrer's own (the same address up to dots and
a +tag). A held reward is released or voided by an operator. A deposit reversed within
REFERRAL_REVERSAL_DAYS takes its reward back (app/flows chargeback)."""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass
from datetime import timedelta
from decimal import ROUND_DOWN, Decimal

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import USER_ACTIVE, User
from app.accounts.service import referrer_for_code
from app.customers.models import CustomerSession
from app.db import utcnow
from app.errors import Conflict, DomainError, NotEnoughFunds, NotFound
from app.ledger import service as ledger
from app.referrals.models import (
    PAYOUT_PAID,
    PAYOUT_PENDING,
    PAYOUT_REJECTED,
    REWARD_ACCRUED,
    REWARD_CREDITED,
    REWARD_HELD,
    REWARD_VOIDED,
    TRACE_SIGNUP,
    ClientTrace,
    ReferralPayout,
    ReferralReward,
)
from app.settings import Settings

log = logging.getLogger(__name__)
REWARD_PLACES = Decimal("0.00001")
SIGNAL_ADDRESS = "sign-up from an address the referrer used"
SIGNAL_DEVICE = "sign-up from a browser the referrer used"
SIGNAL_MAILBOX = "the referrer's own mailbox"


class NoReferrer(NotFound):
    http_status = 404
    message = "This user has no referrer"


class SelfReferral(DomainError):
    http_status = 422
    message = "A user cannot refer themselves"


class PayoutsOff(DomainError):
    http_status = 422
    message = "Referral rewards are credited to the balance at once"


class PayoutTooSmall(DomainError):
    http_status = 422
    message = "Your earnings are below the minimum payout"


class PayoutPending(Conflict):
    http_status = 409
    message = "A payout request is already under review"


class PayoutNotFound(NotFound):
    http_status = 404
    message = "Payout request not found"


class PayoutDecided(Conflict):
    http_status = 409
    message = "This payout request was already decided"


class RewardInPayout(Conflict):
    http_status = 409
    message = "This reward is in a payout request under review"


async def reward_deposit(
    session: AsyncSession,
    *,
    share: Decimal,
    user_id: int,
    deposit_entry_id: int,
    amount: Decimal,
    accrue: bool = False,
) -> ReferralReward | None:
    """Credit the referrer of `user_id` their share of a deposit, once per deposit entry
    (with `accrue`, record it for a later payout instead).

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
    signals = await abuse_signals(session, referrer_id, user_id)
    if signals:
        held = ReferralReward(
            referrer_id=referrer_id,
            referred_id=user_id,
            deposit_entry_id=deposit_entry_id,
            deposit_amount=amount,
            share=share,
            amount=reward,
            status=REWARD_HELD,
            hold_reason="; ".join(signals)[:300],
        )
        session.add(held)
        await session.flush()
        return held
    if accrue:
        inserted = await session.scalar(
            pg_insert(ReferralReward)
            .values(
                referrer_id=referrer_id,
                referred_id=user_id,
                deposit_entry_id=deposit_entry_id,
                deposit_amount=amount,
                share=share,
                amount=reward,
                status=REWARD_ACCRUED,
            )
            .on_conflict_do_nothing(index_elements=[ReferralReward.deposit_entry_id])
            .returning(ReferralReward.id)
        )
        return None if inserted is None else await session.get(ReferralReward, inserted)
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


async def get_reward(session: AsyncSession, reward_id: int) -> ReferralReward:
    reward = await session.get(ReferralReward, reward_id)
    if reward is None:
        raise NotFound("Referral reward not found")
    return reward


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
    if reward.status == REWARD_VOIDED:
        raise Conflict("This reward was already voided")
    if reward.status == REWARD_HELD:  # never credited: nothing to take back
        reward.status, reward.voided_at = REWARD_VOIDED, utcnow()
        reward.voided_by, reward.void_reason = operator, reason
        await session.flush()
        return reward
    if reward.status == REWARD_ACCRUED:
        return await _void_accrued(session, reward, operator=operator, reason=reason)
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


async def _void_accrued(
    session: AsyncSession, reward: ReferralReward, *, operator: str, reason: str
) -> ReferralReward:
    """An accrued reward never reached the balance: voiding it moves no money, unless a
    payout under review carries it (the operator decides that payout first)."""
    if reward.payout_id is not None:
        raise RewardInPayout()
    reward.status = REWARD_VOIDED
    reward.voided_at = utcnow()
    reward.voided_by = operator
    reward.void_reason = reason
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
    # (month "YYYY-MM", rewards earned that month), newest month first.
    monthly: list[tuple[str, Decimal]]
    rewards: list[ReferralReward]
    available: Decimal  # accrued, not yet in a payout request
    payouts: list[ReferralPayout]


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
            .where(
                ReferralReward.referrer_id == user_id,
                ReferralReward.status.in_((REWARD_CREDITED, REWARD_ACCRUED)),
            )
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
        available=await available(session, user_id),
        payouts=await list_payouts(session, user_id=user_id, limit=limit),
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


# --- abuse signals ----------------------------------------------------------------------------


def mailbox(email: str | None) -> str | None:
    """The mailbox an address delivers to, as far as it can be told: lower case, without a
    +tag, and without dots for Gmail (which ignores them)."""
    if not email or "@" not in email:
        return None
    local, _, domain = email.lower().rpartition("@")
    local = local.split("+", 1)[0]
    if domain in ("gmail.com", "googlemail.com"):
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def telling(ip: str | None) -> bool:
    """Whether an address says who is behind it: a loopback or private address (a proxy,
    the panel's own network) is shared by everyone."""
    try:
        return ip is not None and ipaddress.ip_address(ip).is_global
    except ValueError:
        return False


async def record_trace(
    session: AsyncSession, user_id: int, *, kind: str, ip: str | None, device: str | None
) -> None:
    """Where a customer signed up or signed in from (the abuse signals read it)."""
    session.add(ClientTrace(user_id=user_id, kind=kind, ip=(ip or None) and ip[:64], device=device))
    await session.flush()


async def abuse_signals(session: AsyncSession, referrer_id: int, referred_id: int) -> list[str]:
    """Why a reward for `referred_id`'s deposit should wait for the operator (empty: it
    need not)."""
    signals = []
    rows = await session.execute(
        select(User.id, User.email).where(User.id.in_([referrer_id, referred_id]))
    )
    emails = {int(user_id): email for user_id, email in rows}
    own = mailbox(emails.get(referrer_id))
    if own is not None and own == mailbox(emails.get(referred_id)):
        signals.append(SIGNAL_MAILBOX)
    signup = (
        await session.execute(
            select(ClientTrace.ip, ClientTrace.device).where(
                ClientTrace.user_id == referred_id, ClientTrace.kind == TRACE_SIGNUP
            )
        )
    ).all()
    ips = {ip for ip, _ in signup if telling(ip)}
    devices = {device for _, device in signup if device}
    if ips:
        used = (
            select(ClientTrace.ip)
            .where(ClientTrace.user_id == referrer_id)
            .union(select(CustomerSession.ip).where(CustomerSession.user_id == referrer_id))
        )
        if ips & set(await session.scalars(used)):
            signals.append(SIGNAL_ADDRESS)
    if devices:
        seen = await session.scalar(
            select(func.count()).where(
                ClientTrace.user_id == referrer_id, ClientTrace.device.in_(devices)
            )
        )
        if seen:
            signals.append(SIGNAL_DEVICE)
    return signals


async def release_reward(
    session: AsyncSession, reward_id: int, *, operator: str, accrue: bool = False
) -> ReferralReward:
    """Credit a held reward after the operator's review, once (with `accrue`, it joins the
    rewards waiting for a payout instead)."""
    reward = await session.scalar(
        select(ReferralReward).where(ReferralReward.id == reward_id).with_for_update()
    )
    if reward is None:
        raise NotFound("Referral reward not found")
    if reward.status != REWARD_HELD:
        raise Conflict("Only a held reward can be released")
    reward.released_at, reward.released_by = utcnow(), operator
    if accrue:
        reward.status = REWARD_ACCRUED
        await session.flush()
        return reward
    movement = await ledger.credit(
        session,
        user_id=reward.referrer_id,
        amount=reward.amount,
        kind="referral",
        reason=f"Referral reward: deposit of user #{reward.referred_id} (released)",
        operator=operator,
        idempotency_key=f"referral:{reward.deposit_entry_id}",
    )
    assert movement is not None  # a held reward was never credited
    reward.status, reward.ledger_entry_id = REWARD_CREDITED, movement.entry_id
    await session.flush()
    return reward


async def take_back_reversed(
    session: AsyncSession, referred_id: int, *, days: int, operator: str, reason: str
) -> list[int]:
    """The referred user's deposits were reversed: the rewards they earned within `days`
    are voided (a held one at once; a credited one taken back while the referrer's balance
    covers it, else left to the operator). The ids voided."""
    since = utcnow() - timedelta(days=days)
    rows = await session.scalars(
        select(ReferralReward.id)
        .where(
            ReferralReward.referred_id == referred_id,
            ReferralReward.status.in_((REWARD_CREDITED, REWARD_HELD, REWARD_ACCRUED)),
            ReferralReward.created_at >= since,
        )
        .order_by(ReferralReward.id)
    )
    voided = []
    for reward_id in list(rows):
        try:
            async with session.begin_nested():
                await void_reward(session, reward_id, operator=operator, reason=reason)
        except (NotEnoughFunds, Conflict):  # the balance no longer covers it; in a payout
            log.warning("referral reward not taken back", extra={"reward": reward_id})
            continue
        voided.append(reward_id)
    return voided


# Payouts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PayoutRules:
    """AFFILIATE_PAYOUTS and AFFILIATE_MIN_PAYOUT."""

    mode: str  # balance | request | review
    minimum: Decimal

    @classmethod
    def of(cls, settings: Settings) -> PayoutRules:
        return cls(settings.affiliate_payouts, settings.affiliate_min_payout)


async def available(session: AsyncSession, user_id: int) -> Decimal:
    """Accrued rewards not yet in a payout request."""
    total = await session.scalar(
        select(func.coalesce(func.sum(ReferralReward.amount), 0)).where(
            ReferralReward.referrer_id == user_id,
            ReferralReward.status == REWARD_ACCRUED,
            ReferralReward.payout_id.is_(None),
        )
    )
    return Decimal(total or 0)


async def request_payout(session: AsyncSession, rules: PayoutRules, user_id: int) -> ReferralPayout:
    """Gather every available reward into a payout request: paid to the balance at once
    (`request`) or left for the operator's review (`review`)."""
    if rules.mode not in ("request", "review"):
        raise PayoutsOff()
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())
    pending = await session.scalar(
        select(ReferralPayout.id).where(
            ReferralPayout.user_id == user_id, ReferralPayout.status == PAYOUT_PENDING
        )
    )
    if pending is not None:
        raise PayoutPending()
    amount = await available(session, user_id)
    if amount <= 0 or amount < rules.minimum:
        raise PayoutTooSmall()
    payout = ReferralPayout(user_id=user_id, amount=amount, status=PAYOUT_PENDING)
    session.add(payout)
    await session.flush()
    await session.execute(
        update(ReferralReward)
        .where(
            ReferralReward.referrer_id == user_id,
            ReferralReward.status == REWARD_ACCRUED,
            ReferralReward.payout_id.is_(None),
        )
        .values(payout_id=payout.id)
    )
    if rules.mode == "request":
        await _pay(session, payout, decided_by=None)
    return payout


async def _pay(session: AsyncSession, payout: ReferralPayout, *, decided_by: str | None) -> None:
    movement = await ledger.credit(
        session,
        user_id=payout.user_id,
        amount=payout.amount,
        kind="referral",
        reason=f"Referral payout #{payout.id}",
        operator=decided_by,
        idempotency_key=f"referral-payout:{payout.id}",
    )
    assert movement is not None, "a payout is credited once: it was pending until now"
    payout.status = PAYOUT_PAID
    payout.decided_at = utcnow()
    payout.decided_by = decided_by
    payout.ledger_entry_id = movement.entry_id
    await session.execute(
        update(ReferralReward)
        .where(ReferralReward.payout_id == payout.id)
        .values(status=REWARD_CREDITED, ledger_entry_id=movement.entry_id)
    )
    await session.flush()


async def _pending(session: AsyncSession, payout_id: int) -> ReferralPayout:
    """A payout under review, locked (its referrer's row first, as every movement does)."""
    user_id = await session.scalar(
        select(ReferralPayout.user_id).where(ReferralPayout.id == payout_id)
    )
    if user_id is None:
        raise PayoutNotFound()
    await session.execute(select(User.id).where(User.id == user_id).with_for_update())
    payout = await session.scalar(
        select(ReferralPayout).where(ReferralPayout.id == payout_id).with_for_update()
    )
    assert payout is not None
    if payout.status != PAYOUT_PENDING:
        raise PayoutDecided()
    return payout


async def approve_payout(session: AsyncSession, payout_id: int, *, operator: str) -> ReferralPayout:
    payout = await _pending(session, payout_id)
    await _pay(session, payout, decided_by=operator)
    return payout


async def reject_payout(
    session: AsyncSession, payout_id: int, *, operator: str, reason: str
) -> ReferralPayout:
    """Refuse a payout: nothing is credited and its rewards are available again."""
    payout = await _pending(session, payout_id)
    payout.status = PAYOUT_REJECTED
    payout.decided_at = utcnow()
    payout.decided_by = operator
    payout.reject_reason = reason
    await session.execute(
        update(ReferralReward).where(ReferralReward.payout_id == payout.id).values(payout_id=None)
    )
    await session.flush()
    return payout


async def list_payouts(
    session: AsyncSession,
    *,
    user_id: int | None = None,
    status: str | None = None,
    limit: int,
    offset: int = 0,
) -> list[ReferralPayout]:
    """Payout requests, newest first."""
    stmt = select(ReferralPayout).order_by(ReferralPayout.id.desc()).limit(limit).offset(offset)
    if user_id is not None:
        stmt = stmt.where(ReferralPayout.user_id == user_id)
    if status is not None:
        stmt = stmt.where(ReferralPayout.status == status)
    return list(await session.scalars(stmt))
