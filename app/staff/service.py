"""Staff members, their sessions, API tokens, invitations and second factor.

Passwords, TOTP codes and digests go through the customers' helpers (one Argon2id hasher,
one TOTP window rule). Secrets handed out are random and stored as SHA-256; single-use
ones (invitations) are spent by a conditional update, and a TOTP code's time step is
recorded by one too, so neither can be used twice, even concurrently. A disabled member's
sessions end at once and their tokens stop resolving (the lookup joins the member).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pyotp
from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app import keyring
from app.customers import service as customers
from app.customers.errors import InvalidToken, InvalidTwoFactorCode, TwoFactorState
from app.db import utcnow
from app.errors import NotFound
from app.http.auth import Principal
from app.staff.errors import LastOwner, StaffEmailTaken, StaffNotFound, UnknownRole
from app.staff.models import (
    StaffInvitation,
    StaffMember,
    StaffSession,
    StaffSettings,
    StaffToken,
)
from app.staff.roles import OWNER, ROLES, permissions_of

TOTP_PURPOSE = "staff.totp"  # the keyring purpose of staff TOTP seeds (app/rotation.py)
TOTP_ISSUER = "smm-panel staff"
TOKEN_PREFIX = "stf_"  # noqa: S105 - every staff API token starts so
TOKEN_USE_GRANULARITY = timedelta(minutes=5)  # last_used_at is refreshed at most this often


def principal_of(member: StaffMember) -> Principal:
    return Principal(member.email, member.role, permissions_of(member.role), member.id)


# Members.


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UnknownRole(ROLES)
    return role


async def member_by_email(session: AsyncSession, email: str) -> StaffMember | None:
    found: StaffMember | None = await session.scalar(
        select(StaffMember).where(func.lower(StaffMember.email) == email.strip().lower())
    )
    return found


async def get_member(session: AsyncSession, staff_id: int, *, lock: bool = False) -> StaffMember:
    stmt = select(StaffMember).where(StaffMember.id == staff_id)
    member = await session.scalar(stmt.with_for_update() if lock else stmt)
    if member is None:
        raise StaffNotFound()
    return member


async def find_member(session: AsyncSession, email: str) -> StaffMember:
    member = await member_by_email(session, email)
    if member is None:
        raise StaffNotFound()
    return member


async def list_members(session: AsyncSession) -> list[StaffMember]:
    return list(await session.scalars(select(StaffMember).order_by(StaffMember.id)))


async def create_member(
    session: AsyncSession, *, email: str, role: str, password: str | None, language: str = "en"
) -> StaffMember:
    """A new member; without a password they set one through an invitation."""
    address = customers.normalize_email(email)
    check_role(role)
    if password is not None:
        customers.check_password(password)
    if await member_by_email(session, address) is not None:
        raise StaffEmailTaken()
    member = StaffMember(
        email=address,
        role=role,
        password_hash=customers.hash_password(password) if password is not None else None,
        language=language if language in ("en", "ru") else "en",
    )
    session.add(member)
    await session.flush()
    return member


async def _other_active_owners(session: AsyncSession, staff_id: int) -> int:
    count = await session.scalar(
        select(func.count(StaffMember.id)).where(
            StaffMember.role == OWNER,
            StaffMember.disabled_at.is_(None),
            StaffMember.id != staff_id,
        )
    )
    return int(count or 0)


async def _keep_an_owner(session: AsyncSession, member: StaffMember) -> None:
    """The last active owner stays one (ADMIN_TOKEN aside, nobody could manage staff)."""
    if member.role == OWNER and member.disabled_at is None:
        if await _other_active_owners(session, member.id) == 0:
            raise LastOwner()


async def set_role(session: AsyncSession, staff_id: int, role: str) -> StaffMember:
    check_role(role)
    member = await get_member(session, staff_id, lock=True)
    if role != member.role:
        await _keep_an_owner(session, member)
        member.role = role
        await session.flush()
    return member


async def disable(session: AsyncSession, staff_id: int) -> StaffMember:
    """Disable a member: every session ends now; tokens stop resolving while disabled."""
    member = await get_member(session, staff_id, lock=True)
    if member.disabled_at is None:
        await _keep_an_owner(session, member)
        member.disabled_at = utcnow()
        await revoke_sessions(session, staff_id)
        await session.flush()
    return member


async def enable(session: AsyncSession, staff_id: int) -> StaffMember:
    member = await get_member(session, staff_id, lock=True)
    member.disabled_at = None
    await session.flush()
    return member


# Invitations (set the password by a mailed link).


async def issue_invitation(session: AsyncSession, staff_id: int, valid_for: timedelta) -> str:
    token = secrets.token_urlsafe(32)
    session.add(
        StaffInvitation(
            staff_id=staff_id,
            token_hash=customers.digest(token),
            expires_at=utcnow() + valid_for,
        )
    )
    await session.flush()
    return token


async def invited_member(session: AsyncSession, token: str) -> StaffMember:
    """The member a valid, unspent invitation is for (the token is not spent)."""
    if not token or len(token) > 200:
        raise InvalidToken()
    member = await session.scalar(
        select(StaffMember)
        .join(StaffInvitation, StaffInvitation.staff_id == StaffMember.id)
        .where(
            StaffInvitation.token_hash == customers.digest(token),
            StaffInvitation.used_at.is_(None),
            StaffInvitation.expires_at > func.now(),
            StaffMember.disabled_at.is_(None),
        )
    )
    if member is None:
        raise InvalidToken()
    return member


async def accept_invitation(session: AsyncSession, token: str, password: str) -> StaffMember:
    """Spend the invitation and set the password; every session of the member ends."""
    customers.check_password(password)
    if not token or len(token) > 200:
        raise InvalidToken()
    staff_id = await session.scalar(
        update(StaffInvitation)
        .where(
            StaffInvitation.token_hash == customers.digest(token),
            StaffInvitation.used_at.is_(None),
            StaffInvitation.expires_at > func.now(),
        )
        .values(used_at=func.now())
        .returning(StaffInvitation.staff_id)
    )
    if staff_id is None:
        raise InvalidToken()
    member = await get_member(session, int(staff_id), lock=True)
    if member.disabled_at is not None:
        raise InvalidToken()
    member.password_hash = customers.hash_password(password)
    await revoke_sessions(session, member.id)
    await session.flush()
    return member


# API tokens.


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once
    row: StaffToken


async def issue_token(session: AsyncSession, staff_id: int, name: str) -> IssuedToken:
    member = await get_member(session, staff_id)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = StaffToken(
        staff_id=member.id,
        name=(name.strip() or "api")[:100],
        prefix=token[:12],
        token_hash=customers.digest(token),
    )
    session.add(row)
    await session.flush()
    return IssuedToken(token, row)


async def list_tokens(session: AsyncSession, staff_id: int) -> list[StaffToken]:
    return list(
        await session.scalars(
            select(StaffToken)
            .where(StaffToken.staff_id == staff_id, StaffToken.revoked_at.is_(None))
            .order_by(StaffToken.id)
        )
    )


async def revoke_token(session: AsyncSession, staff_id: int, token_id: int) -> None:
    done = await session.scalar(
        update(StaffToken)
        .where(
            StaffToken.id == token_id,
            StaffToken.staff_id == staff_id,
            StaffToken.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
        .returning(StaffToken.id)
    )
    if done is None:
        raise NotFound("Token not found")


async def principal_for_token(session: AsyncSession, token: str) -> Principal | None:
    """The staff member behind an API token (None: unknown, revoked, or member disabled)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    found = (
        await session.execute(
            select(StaffMember, StaffToken.id)
            .join(StaffToken, StaffToken.staff_id == StaffMember.id)
            .where(
                StaffToken.token_hash == customers.digest(token),
                StaffToken.revoked_at.is_(None),
                StaffMember.disabled_at.is_(None),
            )
        )
    ).first()
    if found is None:
        return None
    member, token_id = found
    await session.execute(
        update(StaffToken)
        .where(
            StaffToken.id == token_id,
            or_(
                StaffToken.last_used_at.is_(None),
                StaffToken.last_used_at < utcnow() - TOKEN_USE_GRANULARITY,
            ),
        )
        .values(last_used_at=func.now())
    )
    return principal_of(member)


# Console sessions.


@dataclass(frozen=True)
class OpenedSession:
    token: str
    row: StaffSession


async def open_session(
    session: AsyncSession,
    staff_id: int,
    valid_for: timedelta,
    *,
    enrolling: bool,
    ip: str | None,
    user_agent: str | None,
) -> OpenedSession:
    token = secrets.token_urlsafe(32)
    row = StaffSession(
        staff_id=staff_id,
        token_hash=customers.digest(token),
        enrolling=enrolling,
        expires_at=utcnow() + valid_for,
        ip=(ip or "")[:64] or None,
        user_agent=(user_agent or "")[:300] or None,
    )
    session.add(row)
    await session.flush()
    return OpenedSession(token, row)


@dataclass(frozen=True)
class SignedIn:
    """The staff member of a console session."""

    member: StaffMember
    session_id: int
    enrolling: bool

    @property
    def principal(self) -> Principal:
        return principal_of(self.member)


async def resolve_session(session: AsyncSession, token: str | None) -> SignedIn | None:
    if not token or len(token) > 200:
        return None
    found = (
        await session.execute(
            select(StaffMember, StaffSession.id, StaffSession.enrolling)
            .join(StaffSession, StaffSession.staff_id == StaffMember.id)
            .where(
                StaffSession.token_hash == customers.digest(token),
                StaffSession.revoked_at.is_(None),
                StaffSession.expires_at > func.now(),
                StaffMember.disabled_at.is_(None),
            )
        )
    ).first()
    if found is None:
        return None
    return SignedIn(found[0], found[1], found[2])


async def list_sessions(session: AsyncSession, staff_id: int) -> list[StaffSession]:
    return list(
        await session.scalars(
            select(StaffSession)
            .where(
                StaffSession.staff_id == staff_id,
                StaffSession.revoked_at.is_(None),
                StaffSession.expires_at > func.now(),
            )
            .order_by(StaffSession.id.desc())
        )
    )


async def revoke_session(session: AsyncSession, staff_id: int, session_id: int) -> None:
    done = await session.scalar(
        update(StaffSession)
        .where(
            StaffSession.id == session_id,
            StaffSession.staff_id == staff_id,
            StaffSession.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
        .returning(StaffSession.id)
    )
    if done is None:
        raise NotFound("Session not found")


async def revoke_sessions(session: AsyncSession, staff_id: int) -> int:
    revoked = await session.execute(
        update(StaffSession)
        .where(StaffSession.staff_id == staff_id, StaffSession.revoked_at.is_(None))
        .values(revoked_at=func.now())
        .returning(StaffSession.id)
    )
    return len(revoked.all())


# The second factor (TOTP).


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    uri: str


def totp_secret_of(secret_keyring: str, member: StaffMember) -> str:
    if not member.totp_secret:
        return ""
    return keyring.decrypt(secret_keyring, TOTP_PURPOSE, member.totp_secret)


async def enrolment(session: AsyncSession, secret_keyring: str, staff_id: int) -> TotpSetup:
    """The seed being enrolled: made once per enrolment and kept (encrypted) until a code
    confirms it, so reloading the page shows the same QR code."""
    member = await get_member(session, staff_id, lock=True)
    if member.totp_enabled_at is not None:
        raise TwoFactorState("Two-factor sign-in is already on")
    seed = totp_secret_of(secret_keyring, member)
    if not seed:
        seed = pyotp.random_base32()
        member.totp_secret = keyring.encrypt(secret_keyring, TOTP_PURPOSE, seed)
        member.totp_last_step = None
        await session.flush()
    uri = pyotp.TOTP(seed).provisioning_uri(name=member.email, issuer_name=TOTP_ISSUER)
    return TotpSetup(seed, uri)


async def confirm_enrolment(
    session: AsyncSession, secret_keyring: str, staff_id: int, code: str
) -> None:
    member = await get_member(session, staff_id, lock=True)
    if member.totp_enabled_at is not None:
        raise TwoFactorState("Two-factor sign-in is already on")
    step = customers.totp_step(totp_secret_of(secret_keyring, member), code.strip())
    if step is None:
        raise InvalidTwoFactorCode()
    member.totp_enabled_at = utcnow()
    member.totp_last_step = step
    await session.flush()


async def check_code(
    session: AsyncSession, secret_keyring: str, member: StaffMember, code: str
) -> None:
    """A fresh TOTP code of the member's; the same code (or an older one) never twice."""
    code = code.strip().replace(" ", "")
    step = customers.totp_step(totp_secret_of(secret_keyring, member), code)
    if step is None:
        raise InvalidTwoFactorCode()
    accepted = await session.scalar(
        update(StaffMember)
        .where(
            StaffMember.id == member.id,
            func.coalesce(StaffMember.totp_last_step, -1) < step,
        )
        .values(totp_last_step=step)
        .returning(StaffMember.id)
    )
    if accepted is None:
        raise InvalidTwoFactorCode()


async def reset_totp(session: AsyncSession, staff_id: int) -> StaffMember:
    """Turn the second factor off: the next sign-in enrols a new one; sessions end."""
    member = await get_member(session, staff_id, lock=True)
    member.totp_secret = None
    member.totp_enabled_at = None
    member.totp_last_step = None
    await revoke_sessions(session, staff_id)
    await session.flush()
    return member


# The owner's settings of the roles.


async def settings_row(session: AsyncSession) -> StaffSettings:
    """The settings row, locked (made on first use; concurrent first uses make one)."""
    await session.execute(insert(StaffSettings).values(id=1).on_conflict_do_nothing())
    row = await session.scalar(select(StaffSettings).where(StaffSettings.id == 1).with_for_update())
    assert row is not None
    return row


async def support_refund_limit(session: AsyncSession) -> Decimal:
    row = await session.get(StaffSettings, 1)
    return row.support_refund_limit if row is not None else Decimal(0)


async def set_support_refund_limit(session: AsyncSession, limit: Decimal) -> StaffSettings:
    row = await settings_row(session)
    row.support_refund_limit = limit
    row.updated_at = utcnow()
    await session.flush()
    return row


async def refund_limit(session: AsyncSession, principal: Principal) -> Decimal | None:
    """The largest refund the caller may grant on one review resolution: no limit with
    `reviews:refund`, else the owner's support refund limit."""
    if principal.may("reviews:refund"):
        return None
    return await support_refund_limit(session)
